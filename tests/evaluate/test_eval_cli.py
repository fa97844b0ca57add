import csv
import json

import pytest

from axial.cli import main

FIELDS = ["Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers", "Source"]


def write_truthfulqa_csv(path, n):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for i in range(n):
            w.writerow({"Type": "Adversarial", "Category": "Misc", "Question": f"What is thing {i}?",
                        "Best Answer": f"It is {i}", "Correct Answers": f"It is {i}; Thing {i}",
                        "Incorrect Answers": f"It is {i + 1}; Nothing", "Source": "x"})


def test_cli_eval_truthfulqa_mc(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "tqa.csv"
    write_truthfulqa_csv(data, 12)
    out = tmp_path / "run"
    main(["eval", "--model", str(tiny_model_dir), "--dtype", "fp32", "--bench", "truthfulqa_mc",
          "--data", f"truthfulqa={data}", "--split", "all", "--limit", "truthfulqa_mc=5", "--out", str(out),
          "--set", "bootstrap_resamples=200"])
    report = json.loads((out / "report.json").read_text())
    assert report["results"]["base"]["truthfulqa_mc"]["mc2"]["n"] == 5
    assert report["config"]["limits"] == {"truthfulqa_mc": 5}
    assert "mc1" in capsys.readouterr().out


def test_cli_eval_missing_data_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--bench", "harmless", "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    assert "--data harmless=" in capsys.readouterr().err


def test_cli_eval_bad_bench_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--bench", "mmlu", "--data", "mmlu=x", "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    assert "unknown bench 'mmlu'" in capsys.readouterr().err
