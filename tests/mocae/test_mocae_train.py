import json

import pytest
import torch

from axial.errors import AxialError
from axial.mixture import Mixture, Routed
from axial.mocae import load_router
from axial.mocae.data import routing_examples
from axial.mocae.router import MoCaERouter
from axial.mocae.store import parse_router_spec
from axial.mocae.train import RouterConfig, fit_on_features, routing_losses, train_router
from axial.testing import tiny_llama

NAMES = ["helpful", "harmless", "honest"]


def test_fit_on_separable_features_reduces_loss():
    torch.manual_seed(0)
    labels = torch.arange(90) % 3
    centers = torch.randn(3, 2, 16) * 2
    feats = centers[labels] + torch.randn(90, 2, 16)
    router = MoCaERouter(16, NAMES, 2)
    cfg = RouterConfig(epochs=30, batch_size=16, learning_rate=1e-2)
    with torch.no_grad():
        before = float(routing_losses(router.all_layer_logits(feats), labels, cfg)["ce"])
    history = fit_on_features(router, {"feats": feats, "labels": labels}, cfg)
    assert history[-1]["ce"] < before / 4
    assert history[-1]["accuracy"] > 0.95


def test_losses_regularisers():
    cfg = RouterConfig(entropy_weight=1.0, kl_weight=1.0, balance_weight=1.0)
    collapsed = torch.tensor([[[5.0, 0, 0]]]).repeat(4, 1, 1)
    spread = torch.tensor([[[5.0, 0, 0]], [[0, 5.0, 0]], [[0, 0, 5.0]], [[5.0, 0, 0]]])
    a, b = routing_losses(collapsed, torch.zeros(4, dtype=torch.long), cfg), routing_losses(spread, torch.zeros(
        4, dtype=torch.long), cfg)
    assert a["kl"] > b["kl"] and a["balance"] > b["balance"]
    assert float(routing_losses(torch.zeros(2, 1, 3), torch.zeros(2, dtype=torch.long), cfg)["entropy"]) == \
        pytest.approx(torch.log(torch.tensor(3.0)).item())


def test_routing_parts_are_disjoint(separable_data):
    kw = {"heldout_fraction": 0.3, "per_axis_limit": None}
    parts = {p: {e.key for e in routing_examples(separable_data, NAMES, p, **kw)}
             for p in ("train", "heldout", "calibration", "report")}
    assert parts["train"].isdisjoint(parts["heldout"])
    assert parts["calibration"] | parts["report"] == parts["heldout"]
    assert parts["calibration"].isdisjoint(parts["report"])
    with pytest.raises(AxialError, match="axis 'helpful'"):
        routing_examples(separable_data, ["a", "b"], "train", **kw)


@pytest.mark.parametrize("granularity,scope,lm_steps", [("sequence", "per_layer", 2), ("token", "shared", 0)])
def test_train_save_load_roundtrip(tmp_path, expert_dirs, separable_data, granularity, scope, lm_steps):
    model, tok = tiny_llama()
    cfg = RouterConfig(experts=expert_dirs, data=separable_data, out=str(tmp_path / "r"), granularity=granularity,
                       scope=scope, epochs=40, batch_size=16, learning_rate=1e-2, importance="task_vector",
                       lm_steps=lm_steps, tokens_per_prompt=4, per_axis_limit=None, top_k=1)
    out = train_router(cfg, base=(model, tok))
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["history"][-1]["ce"] < metrics["history"][0]["ce"]
    if granularity == "sequence":  # the marker words make sequences separable
        assert metrics["history"][-1]["accuracy"] > 0.9
    assert len(metrics["lm_history"]) == lm_steps
    assert getattr(model, "axial_mixture", None) is None  # train_router leaves the base model clean

    loaded = load_router(out)
    assert loaded.expert_names == NAMES and loaded.gate.top_k == 1 and len(loaded.gate.importance) == 3
    mixture = Mixture.attach(model, loaded.expert_dirs)
    router, gate = load_router(out, mixture)  # the variants' calling convention
    mixture.use(Routed(router, gate))
    enc = tok(["alpha alpha item 1"], return_tensors="pt")
    with torch.no_grad():
        model.generate(**enc, max_new_tokens=3, do_sample=False)
    assert set(mixture.state.gates) == {0, 1}
    soft = load_router(f"{out}?top_k=0&importance=none")
    assert soft.gate.top_k == 0 and soft.gate.importance is None
    with pytest.raises(AxialError, match="unknown option"):
        parse_router_spec(f"{out}?topk=1")
    with pytest.raises(AxialError, match="trained for experts"):
        load_router(out, Mixture.attach(tiny_llama()[0], expert_dirs[::-1]))
    with pytest.raises(AxialError, match="already holds a router"):
        train_router(cfg, base=(model, tok))
    mixture.detach()


def test_experts_digest_follows_the_weights_not_the_path(tmp_path):
    from axial.mocae.train import experts_digest

    expert = tmp_path / "honest"
    expert.mkdir()
    (expert / "adapter_model.safetensors").write_bytes(b"first training")
    before = experts_digest([str(expert)])
    (expert / "adapter_model.safetensors").write_bytes(b"retrained in place")
    assert experts_digest([str(expert)]) != before
    assert experts_digest([str(expert)]) == experts_digest([str(expert)])
