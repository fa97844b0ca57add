import json

import pytest

from axial.cli import main
from axial.mora.pipeline import demo_config


@pytest.fixture
def keyword_judges(monkeypatch, fakes):
    made = {}

    def load_judges(config, axes=None):
        made.update({a: fakes.KeywordJudge(a, keyword=kw) for a, kw in
                     zip(config.axis_names(), ("e", "a", "o"), strict=True)})
        return made

    monkeypatch.setattr("axial.mora.sample.load_judges", load_judges)
    return made


def test_mora_run_cli_whole_chain_on_tiny_model(tmp_path, tiny_model_dir, keyword_judges):
    cfg = demo_config(tmp_path / "exp").replace(model=str(tiny_model_dir), dtype="fp32", max_steps=1,
                                                 max_new_tokens=8, rewrite_max_new_tokens=8, max_length=96,
                                                 similarity_threshold=-1.0)
    path = cfg.save(tmp_path / "mora.json")
    main(["mora", "run", str(path)])
    exp = tmp_path / "exp"
    rollouts = [json.loads(x) for x in (exp / "rollouts.jsonl").read_text().splitlines()]
    assert len(rollouts) == 18 and all(len(r["rollouts"]) == 2 for r in rollouts)
    summary = json.loads((exp / "isolate_summary.json").read_text())
    assert sum(summary["counts"].values()) == 18
    decisions = (exp / "rewrites.jsonl").read_text().splitlines()
    assert len(decisions) == summary["counts"]["single"]
    for arm in ("original", "rewritten"):
        assert (exp / "align" / arm / "sequential_sft" / "final" / "adapter_model.safetensors").exists()
    result = json.loads((exp / "report" / "mora_report.json").read_text())
    assert result["n_heldout"] == 6
    heldout = {p["id"] for p in json.loads((exp / "pools.json").read_text())["heldout"]}
    assert not heldout & {r["id"] for r in rollouts}  # never evaluated on a training prompt
    assert (exp / "report" / "mora_report.png").stat().st_size > 0


def test_cli_errors_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["mora", "sample", str(tmp_path / "missing.json")])
    assert e.value.code == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"out": str(tmp_path / "x"), "prompts": ["no-axis-here"]}))
    with pytest.raises(SystemExit):
        main(["mora", "isolate", str(bad)])
    assert "AXIS=SOURCE" in capsys.readouterr().err


def test_changing_an_experiment_config_is_refused(tmp_path, capsys):
    cfg = demo_config(tmp_path / "exp")
    path = cfg.save(tmp_path / "mora.json")
    cfg.save(tmp_path / "exp" / "mora_config.json")
    with pytest.raises(SystemExit):
        main(["mora", "isolate", str(path), "k=7"])
    assert "k: 2 -> 7" in capsys.readouterr().err
