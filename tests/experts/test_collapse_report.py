import csv
import json

import yaml

from axial.data import write_records
from axial.data.records import SFTRecord

QUESTIONS = [f"What happens if you do thing number {i}?" for i in range(14)]


def _truthfulqa_csv(path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers", "Source"])
        for q in QUESTIONS:
            w.writerow(["Adversarial", "Misc", q, "Nothing happens", "Nothing happens; Nothing much",
                        "You die; You fly", "https://example.org"])
    return path


def test_collapse_report_on_tiny_model(tmp_path, tiny_model_dir):
    from axial.cli import main

    for axis in ("helpful", "honest"):
        write_records([SFTRecord(messages=[{"role": "user", "content": f"{axis} question {i}?"}],
                                 response=f"{axis} answer {i}.") for i in range(10)], tmp_path / f"{axis}.jsonl")
    recipe = {"model": str(tiny_model_dir), "out": str(tmp_path / "unused"), "variables": {"root": None},
              "defaults": {"max_steps": 2, "batch_size": 2, "val_size": 0, "lora_r": 2, "lora_alpha": 4,
                           "split": "all", "dtype": "fp32"},
              "axes": {"helpful": {"data": ["${root}/helpful.jsonl"]}, "honest": {"data": ["${root}/honest.jsonl"]}}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    tqa = _truthfulqa_csv(tmp_path / "tqa.csv")
    out = tmp_path / "collapse"
    main(["collapse-report", "--recipe", str(tmp_path / "recipe.yaml"), "--out", str(out),
          "--data", f"truthfulqa_mc={tqa}", "--bench", "truthfulqa_mc", f"root={tmp_path}"])

    summary = json.loads((out / "collapse_report.json").read_text())
    variants = set(summary["rows"])
    for mode in ("inject", "no_inject"):
        assert {f"expert-helpful@{mode}", f"expert-honest@{mode}", f"uniform@{mode}", f"sequential@{mode}",
                f"mixed@{mode}"} <= variants
        assert (out / mode / "sequential" / "2-honest" / "adapter_model.safetensors").exists()
        side = json.loads((out / mode / "mixed" / "axial_expert.json").read_text())
        assert side["n_records"] == 20 and side["injection"]["enabled"] == (mode == "inject")
    cell = summary["rows"]["uniform@inject"]["truthfulqa_mc"]
    assert cell["axis"] == "honest" and cell["metric"] == "mc1" and cell["score"]["n"] > 0
    assert "gain_vs_base" in cell and "vs_axis_expert" in cell
    assert "gain_vs_base" not in summary["rows"]["base"]["truthfulqa_mc"]
    md = (out / "collapse_report.md").read_text()
    assert "sequential@no_inject" in md and "forgetting" in md
    assert (out / "collapse_report.png").stat().st_size > 1000
