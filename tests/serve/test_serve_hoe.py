"""Serve presets say what they are: balanced / safe are plain linear weight mixing; a HoE set adds hoe-* presets
served by HoE preference routing over router experts."""

import json

import pytest

from axial.errors import AxialError
from axial.hoe import HoEConfig, train_hoe
from axial.mixture import Mixture
from axial.serve import Engine
from axial.serve.app import ServerState, default_presets
from axial.serve.config import ServeConfig
from axial.testing import tiny_llama

AXES = ["helpful", "harmless", "honest"]


def test_default_presets_are_linear_mixing_unless_a_hoe_set_is_given():
    plain = default_presets(AXES, AXES)
    assert plain["balanced"] == "pref:helpful=1,harmless=1,honest=1" and not any(k.startswith("hoe") for k in plain)
    with_hoe = default_presets(AXES, AXES, "sets/hoe")
    assert with_hoe["hoe-balanced"] == "hoe:helpful=1,harmless=1,honest=1?set=sets/hoe"
    assert with_hoe["hoe-safe"].startswith("hoe:harmless=0.6,") and with_hoe["safe"] == plain["safe"]
    with pytest.raises(AxialError, match="give --experts"):
        ServeConfig(hoe="sets/hoe")


def test_server_describes_linear_mixing_and_hoe_presets(expert_dirs, tmp_path):
    files = []
    for axis in AXES:
        path = tmp_path / f"{axis}.jsonl"
        path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"{axis} {i}"}],
                                            "chosen": f"yes {i}", "rejected": f"no {i} !"}) + "\n"
                                for i in range(40)))
        files.append(f"{axis}={path}")
    base = tiny_llama()
    hoe = train_hoe(HoEConfig(experts=[str(d) for d in expert_dirs], data=files, out=str(tmp_path / "hoe"),
                              steps=1, pair_batch_size=3, per_axis_limit=None, validation_per_axis=0,
                              ideal_per_axis=2, max_length=32, max_response_tokens=8, dtype="fp32"), base=base)
    model, tok = base
    engine = Engine(model, tok, name="tiny", mixture=Mixture.attach(model, expert_dirs))
    state = ServerState(engine, ServeConfig(experts=[str(d) for d in expert_dirs], hoe=str(hoe)), [])
    from axial.serve.app import describe

    def how(name):
        source = state.models[f"tiny:{name}"]
        return describe(name, source, state.resolve(source, "model"), engine.expert_names)

    assert how("balanced")["method"].startswith("linear weight mixing")
    assert how("hoe-balanced") == {"source": f"hoe:helpful=0.3333333333,harmless=0.3333333333,"
                                             f"honest=0.3333333333?set={hoe}", "routing": "routed",
                                   "method": "HoE preference routing (router experts)"}
    assert how("helpful")["routing"] == "static"
