import json

import pytest

from axial.cli import main
from axial.mocae import load_router
from axial.mocae.calibrate import CalibrateConfig, calibrate
from axial.mocae.train import RouterConfig, train_router
from axial.testing import save_tiny_llama, tiny_llama


@pytest.fixture(scope="module")
def trained(tmp_path_factory, expert_dirs, separable_data):
    model, tok = tiny_llama()
    out = tmp_path_factory.mktemp("router") / "r"
    train_router(RouterConfig(experts=expert_dirs, data=separable_data, out=str(out), epochs=20, batch_size=16,
                              per_axis_limit=None), base=(model, tok))
    return out, (model, tok)


def test_calibrate_reports_held_out_metrics_and_saves(trained):
    out, base = trained
    report = calibrate(CalibrateConfig(router=str(out), resamples=50), base=base)
    n_cal, n_rep = (sum(report["examples"][p].values()) for p in ("calibration", "report"))
    assert n_cal > 0 and n_rep > 0
    assert report["refused_training_prompts"] == {"calibration": 0, "report": 0}
    after = report["decision_metrics"]["after"]
    assert after["ece"]["n"] == n_rep and after["rows"] == n_rep * 2  # one decision per layer
    assert (out / "calibration" / "reliability.png").stat().st_size > 1000
    assert "| ece |" in (out / "calibration" / "calibration_report.md").read_text()
    saved = json.loads((out / "calibration.json").read_text())
    assert saved["calibrator"]["method"] == "temperature"
    assert load_router(out).router.calibrator.method == "temperature"
    assert load_router(f"{out}?calibration=none").router.calibrator.method == "none"


def test_calibrate_refuses_training_prompts(trained, separable_data, tmp_path):
    out, base = trained
    # Same data, but the router's training keys now cover every prompt: nothing may be fitted on them.
    keys_file = out / "train_keys.json"
    saved = keys_file.read_text()
    from axial.mocae.data import routing_examples
    from axial.mocae.store import key_hash

    everything = routing_examples(separable_data, ["helpful", "harmless", "honest"], "heldout",
                                  heldout_fraction=0.3, per_axis_limit=None)
    keys_file.write_text(json.dumps([key_hash(e.key) for e in everything]))
    try:
        from axial.errors import AxialError

        with pytest.raises(AxialError, match="used to train the router"):
            calibrate(CalibrateConfig(router=str(out), out=str(tmp_path / "c"), resamples=10), base=base)
    finally:
        keys_file.write_text(saved)


def test_cli_train_router_and_calibrate(tmp_path, expert_dirs, separable_data, capsys):
    model_dir = save_tiny_llama(tmp_path / "tiny")
    out = tmp_path / "cli-router"
    main(["train-router", "--experts", ",".join(expert_dirs), *[a for d in separable_data for a in ("--data", d)],
          "--out", str(out), "--model", str(model_dir), "epochs=5", "dtype=fp32", "scope=shared", "per_axis_limit=8"])
    assert json.loads((out / "router_config.json").read_text())["scope"] == "shared"
    main(["calibrate", "--router", str(out), "--method", "none", "resamples=20", "dtype=fp32"])
    assert "ece" in capsys.readouterr().out
    assert json.loads((out / "calibration.json").read_text())["calibrator"]["method"] == "none"
    with pytest.raises(SystemExit) as e:
        main(["train-router", "--experts", expert_dirs[0], "--data", separable_data[0], "--out", str(tmp_path / "x"),
              "scope=diagonal"])
    assert e.value.code == 2
