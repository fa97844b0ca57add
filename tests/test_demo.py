import json

import pytest

from axial.demo import DemoConfig, demo
from axial.errors import AxialError


def test_demo_config_rejects_unknown_steps():
    with pytest.raises(AxialError, match="DemoConfig.steps"):
        DemoConfig(steps=["base", "dance"])


@pytest.mark.integration
def test_demo_runs_every_step_on_a_tiny_model(tiny_model_dir, tmp_path):
    # retrain=true on the built-in axis sets: the demo's offline path end to end (the MORA step's weak judge is
    # the embedded model, hence integration).
    results = demo(DemoConfig(model=str(tiny_model_dir), retrain=True, out=str(tmp_path), max_new_tokens=4,
                              dtype="fp32"))
    assert set(results["steps"]) == {"base", "experts", "preference", "hoe", "mocae", "mora"}
    assert "demonstration only" in results["steps"]["hoe"]["how"]  # no shipped set matches retrained experts
    assert (tmp_path / "hoe" / "anchors.json").exists()
    saved = json.loads((tmp_path / "demo_results.json").read_text())
    assert saved["steps"]["mora"]["counts"] and sum(saved["steps"]["mora"]["counts"].values()) == 6
    assert (tmp_path / "router" / "mocae.json").exists()
    assert all((tmp_path / "experts" / a / "adapter_model.safetensors").exists()
               for a in ("helpful", "harmless", "honest"))
