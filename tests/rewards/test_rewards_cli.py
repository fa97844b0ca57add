import json

import pytest

from axial.cli import main
from axial.rewards.bradley_terry import RewardConfig


def _hh(path, n=48):
    with path.open("w") as f:
        for i in range(n):
            prefix = f"\n\nHuman: request number {i}, please?\n\nAssistant:"
            f.write(json.dumps({"chosen": prefix + " I can't help with that, sorry.",
                                "rejected": prefix + f" Sure! Step {i}: do it."}) + "\n")
    return path


def test_train_reward_and_validate_judge_cli(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setenv("AXIAL_HOME", str(tmp_path / "home"))
    data = _hh(tmp_path / "hh.jsonl")
    out = tmp_path / "rm"
    main(["train-reward", "--axis", "harmless", "--data", str(data), "--out", str(out), f"encoder={tiny_model_dir}",
          "dtype=fp32", "layer=2", "pooling=mean", "max_length=128", "max_response_tokens=32"])
    cfg = RewardConfig.load(out / "reward_config.json")
    assert cfg.n_train > 0 and cfg.metrics["test"]["n"] > 0 and cfg.split == "train"
    assert "test pair accuracy" in capsys.readouterr().out

    result = tmp_path / "v.json"
    main(["validate-judge", "--axis", "harmless", "--judge", f"rm:{out}", "--data", str(data), "--out", str(result)])
    (saved,) = json.loads(result.read_text())["results"]
    assert result.with_suffix(".md").exists() and result.with_suffix(".png").exists()
    assert saved["n"] == cfg.metrics["test"]["n"] and saved["value"] == pytest.approx(cfg.metrics["test"]["value"])


def test_cli_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["validate-judge", "--axis", "harmless", "--judge", "nope:x", "--data", "x.jsonl"])
    assert e.value.code == 2 and "unknown kind 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train-reward", "--axis", "harmless", "--data", "x.jsonl", "--out", str(tmp_path), "split=test"])
    assert e.value.code == 2 and "RewardConfig.split" in capsys.readouterr().err


def test_validate_judge_cli_many_sources_splits_and_record(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setenv("AXIAL_HOME", str(tmp_path / "home"))
    data = _hh(tmp_path / "hh.jsonl")
    out = tmp_path / "rm"
    main(["train-reward", "--axis", "harmless", "--data", str(data), "--out", str(out), f"encoder={tiny_model_dir}",
          "dtype=fp32", "layer=2", "pooling=mean", "max_length=128", "max_response_tokens=32"])
    unseen = tmp_path / "other.jsonl"
    unseen.write_text("".join(json.dumps({"chosen": f"\n\nHuman: another {i}?\n\nAssistant: Sorry, no.",
                                          "rejected": f"\n\nHuman: another {i}?\n\nAssistant: Yes {i}."}) + "\n"
                              for i in range(10)))
    result = tmp_path / "v" / "validation.json"
    main(["validate-judge", "--axis", "harmless", "--judge", f"rm:{out}", "--data", str(data), "--split", "test",
          "--data", str(unseen), "--split", "all", "--out", str(result), "--record"])
    doc = json.loads(result.read_text())
    assert all(r["data"].endswith(s) for r, s in zip(doc["results"], ["(split=test)", "(split=all)"], strict=True))
    assert doc["results"][1]["n"] == 10 and doc["results"][0]["judge"]["spec"] == f"rm:{out}"
    assert json.loads((out / "validation.json").read_text())["results"] == doc["results"]
    printed = capsys.readouterr().out
    assert "unequal_length" in printed and "judge-length" in printed
    # the recorded validation is what the loaded judge carries into reports
    from axial.rewards import load_judge

    assert load_judge(f"rm:{out}").validation["data"] == doc["results"][0]["data"]
    with pytest.raises(SystemExit) as e:
        main(["validate-judge", "--axis", "harmless", "--judge", f"rm:{out}", "--data", str(data), "--split", "all"])
    assert e.value.code == 2 and "27 prompt(s)" in capsys.readouterr().err


def test_validate_judge_cli_max_pairs_per_prompt_per_data(tmp_path, capsys, monkeypatch):
    from test_validate import LengthJudge, _annotations, _pandalm

    from axial.rewards import registry

    monkeypatch.setitem(registry.JUDGE_KINDS, "length", (lambda _arg, axis: LengthJudge(axis), None))
    gpt4, pl = _annotations(tmp_path / "a.jsonl.gz"), _pandalm(tmp_path / "pandalm.json")
    result = tmp_path / "v.json"
    main(["validate-judge", "--axis", "helpful", "--judge", "length", "--data", str(pl), "--split", "all",
          "--max-pairs-per-prompt", "all", "--data", str(gpt4), "--max-pairs-per-prompt", "1", "--out", str(result)])
    assert [r["n"] for r in json.loads(result.read_text())["results"]] == [30, 20]
    for bad in ("0", "many"):
        with pytest.raises(SystemExit) as e:
            main(["validate-judge", "--axis", "helpful", "--judge", "length", "--data", str(pl), "--split", "all",
                  "--max-pairs-per-prompt", bad])
        assert e.value.code == 2 and "--max-pairs-per-prompt" in capsys.readouterr().err
