import pytest
import torch

from axial.errors import AxialError
from axial.mixture import GateConfig, Mixture, Routed, Static, load_experts
from axial.mocae.calibration import TemperatureScaling
from axial.mocae.router import MoCaERouter, task_vector_importance
from axial.testing import tiny_llama

NAMES = ["helpful", "harmless", "honest"]


def _router(**kw):
    torch.manual_seed(0)
    return MoCaERouter(64, NAMES, 2, **kw)


@pytest.mark.parametrize("scope", ["per_layer", "shared"])
@pytest.mark.parametrize("arch", ["linear", "mlp"])
def test_token_router_shapes_and_scope(scope, arch):
    r = _router(scope=scope, arch=arch, granularity="token")
    h = torch.randn(2, 5, 64)
    z0, z1 = r(h, 0), r(h, 1)
    assert z0.shape == (2, 5, 3)
    assert torch.equal(z0, z1) == (scope == "shared")
    assert r.all_layer_logits(torch.randn(4, 2, 64)).shape == (4, 2, 3)
    feats = MoCaERouter.normalise(h)
    torch.testing.assert_close(r.all_layer_logits(torch.stack([feats, feats], dim=2))[:, :, 1], z1)


def test_sequence_router_pools_real_tokens_only_and_reuses_at_decode():
    r = _router(granularity="sequence")
    h = torch.randn(2, 4, 64)
    with pytest.raises(AxialError, match="attention mask"):
        r(h, 0)
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    with r.pool_over(mask):
        z = r(h, 0)
        h2 = h.clone()
        h2[0, :2] = 100.0  # padding content must not matter
        assert torch.allclose(r(h2, 0), z)
    assert torch.allclose(z[:, 0], z[:, 3])  # one decision per sequence
    expected = r.head_logits(MoCaERouter.normalise(h[0, 2:]).mean(0), 0)
    torch.testing.assert_close(z[0, 0], expected)


def test_calibrated_logits_give_calibrated_softmax():
    r = _router(granularity="token")
    h = torch.randn(1, 3, 64)
    raw = r(h, 0)
    r.calibrator = TemperatureScaling(2.0)
    torch.testing.assert_close(torch.softmax(r(h, 0), -1), torch.softmax(raw / 2.0, -1))


def test_task_vector_importance(expert_dirs):
    experts = load_experts(expert_dirs)
    gamma = task_vector_importance(experts)
    assert len(gamma) == 3 and sum(gamma) / 3 == pytest.approx(1.0)
    # A duplicated expert agrees with the consensus more than the others do.
    dup = load_experts([expert_dirs[0], expert_dirs[0], expert_dirs[1]], names=["a", "b", "c"])
    g = task_vector_importance(dup)
    assert g[0] == pytest.approx(g[1]) and g[0] > g[2]
    # The low-rank Gram trick equals the cosine computed on materialised, flattened task vectors.
    flat = torch.stack([torch.cat([e.factors[m].delta().flatten() for m in experts.module_names])
                        for e in experts.experts]).double()
    mean = flat.mean(0)
    cos = (flat @ mean) / (flat.norm(dim=1) * mean.norm())
    torch.testing.assert_close(torch.tensor(gamma, dtype=torch.float64), cos / cos.mean())


@pytest.mark.parametrize("granularity", ["sequence", "token"])
@pytest.mark.parametrize("top_k", [0, 1])
def test_generate_with_kv_cache_matches_no_cache(expert_dirs, granularity, top_k):
    model, tok = tiny_llama()
    mixture = Mixture.attach(model, expert_dirs)
    r = _router(granularity=granularity, scope="per_layer")
    r.w1.data *= 5  # decisive, input-dependent routing
    mixture.use(Routed(r, GateConfig(top_k=top_k)))
    r.bind(model)
    enc = tok(["hello there", "hi"], return_tensors="pt", padding=True, padding_side="left")
    with torch.no_grad():
        cached = model.generate(**enc, max_new_tokens=6, do_sample=False, use_cache=True)
        # Reference: greedy decoding by full forwards, where per-sequence routing is pinned to the prompt.
        ids, attn = enc["input_ids"], enc["attention_mask"]
        model(input_ids=ids, attention_mask=attn)  # prefill: routing decided on the prompt
        prompt_routes = dict(r._pooled)
        for _ in range(6):
            if granularity == "sequence":
                with r.pool_over(attn):
                    r._pooled.update(prompt_routes)
                    r._decoding = True
                    logits = model(input_ids=ids, attention_mask=attn).logits
            else:
                logits = model(input_ids=ids, attention_mask=attn).logits
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], 1)
            attn = torch.cat([attn, torch.ones_like(nxt)], 1)
    assert torch.equal(cached, ids)
    gates = mixture.state.gates[0]
    if top_k == 1:
        assert ((gates > 0).sum(-1) == 1).all()
    with mixture.using(Static(None)):
        mixture.use(Static(None))
        base = model.generate(**enc, max_new_tokens=6, do_sample=False)
    assert not torch.equal(base, cached)  # the experts did change the output
    r.unbind()


def test_base_option_router_can_leave_a_prompt_to_the_base_model(tmp_path, expert_dirs):
    from axial.mixture import Mixture, Routed, Static
    from axial.mocae import load_router
    from axial.mocae.store import save_router
    from axial.testing import tiny_llama

    model, tok = tiny_llama()
    mixture = Mixture.attach(model, expert_dirs)
    router = MoCaERouter(model.config.hidden_size, mixture.expert_names, model.config.num_hidden_layers,
                         granularity="token", base_option=True)
    assert router.outputs_weights and router.w1.shape[-1] == 4  # one more logit: "no expert"
    ids = torch.randint(0, 250, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        router.w1.zero_()
        router.b1.zero_()
        mixture.use(Routed(router))
        model(input_ids=ids)
        for g in mixture.state.gates.values():  # uniform over 4 options: 1/4 per expert, the base keeps 1/4
            torch.testing.assert_close(g, torch.full_like(g, 0.25))
        router.b1[:, -1] = 30.0  # everything to the base: the mixture is the base model
        routed = model(input_ids=ids).logits
        mixture.use(Static(None))
        torch.testing.assert_close(routed, model(input_ids=ids).logits, atol=1e-5, rtol=0)
    save_router(router, tmp_path / "r", expert_dirs=[str(d) for d in expert_dirs], base_model="tiny", top_k=0,
                importance=[1.0, 2.0, 1.0])
    loaded = load_router(tmp_path / "r", mixture)
    assert loaded.router.base_option and loaded.router.gate.importance == [1.0, 2.0, 1.0]
    with torch.no_grad():
        loaded.router.b1.zero_()
        mixture.use(loaded.routed)
        model(input_ids=ids)
    g = next(iter(mixture.state.gates.values()))
    torch.testing.assert_close(g[0, 0], torch.tensor([0.25, 0.5, 0.25]))  # γ applies after the base's share
