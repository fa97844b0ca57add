import json

import pytest
import torch
from peft import PeftModel

from axial.errors import AxialError
from axial.mixture import GateConfig, LinearRouter, Mixture, MixtureLinear, Routed, Static, load_experts
from axial.mixture.testing import write_random_adapter
from axial.testing import tiny_llama

Q = "model.layers.0.self_attn.q_proj"


def fresh():
    return tiny_llama(seed=0)[0]


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """Three experts that differ in rank (padding), scaling rule (rsLoRA, alpha_pattern) and target set."""
    root = tmp_path_factory.mktemp("adapters")
    every = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return [
        write_random_adapter(fresh, root / "a", seed=1, axis="helpful", r=2, lora_alpha=4, target_modules=every),
        write_random_adapter(fresh, root / "b", seed=2, axis="harmless", r=8, lora_alpha=8, use_rslora=True,
                             target_modules=every),
        # touches only attention (the others' MLP slots stay zero for it) and scales one module differently
        write_random_adapter(fresh, root / "c", seed=3, r=4, lora_alpha=16, alpha_pattern={"q_proj": 2},
                             target_modules=["q_proj", "v_proj"]),
    ]


@pytest.fixture()
def mixed(adapters):
    model = fresh()
    return model, Mixture.attach(model, adapters)


def ids(batch=3, length=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 250, (batch, length), generator=g)


def logits(model, x, **kw):
    with torch.no_grad():
        return model(input_ids=x, **kw).logits


def peft_logits(adapter, x):
    return logits(PeftModel.from_pretrained(fresh(), str(adapter)).eval(), x)


def test_names_from_sidecar_or_folder(mixed):
    assert mixed[1].expert_names == ["helpful", "harmless", "c"]


def test_one_hot_equals_peft_for_each_adapter(mixed, adapters):
    model, mix = mixed
    x = ids()
    base = logits(model, x)
    for i, adapter in enumerate(adapters):
        w = [0.0] * 3
        w[i] = 1.0
        with mix.using(Static(w)):
            ours = logits(model, x)
        ref = peft_logits(adapter, x)
        assert not torch.allclose(ref, base, atol=1e-3)  # the adapter really changes the output
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_global_weights_are_output_level_mixing_without_cross_terms(mixed, adapters):
    _, mix = mixed
    w = torch.tensor([0.7, -0.2, 0.5])
    x = torch.randn(2, 5, 64)
    layer = mix.modules[Q]
    base = layer.base_layer(x)
    expected = base.clone()
    for k, adapter in enumerate(adapters):
        peft_layer = PeftModel.from_pretrained(fresh(), str(adapter)).get_submodule(f"base_model.model.{Q}")
        with torch.no_grad():
            expected += w[k] * (peft_layer(x) - base)
    with mix.using(Static(w)), torch.no_grad():
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=0)


def test_per_row_weights_equal_each_row_alone(mixed):
    model, mix = mixed
    x = ids(batch=3)
    rows = [[1.0, 0.0, 0.0], [0.2, 0.5, 0.3], [0.0, 0.0, 2.0]]
    with mix.using(Static(rows)):
        batched = logits(model, x)
    for i, w in enumerate(rows):
        with mix.using(Static(w)):
            alone = logits(model, x[i:i + 1])
        torch.testing.assert_close(batched[i:i + 1], alone, atol=1e-4, rtol=0)


def test_none_weights_are_the_base_model_exactly(mixed):
    model, mix = mixed
    x = ids()
    mix.use(Static(None))
    assert torch.equal(logits(model, x), logits(fresh(), x))


def test_detach_restores_original_modules(adapters):
    model = fresh()
    original = model.get_submodule(Q)
    mix = Mixture.attach(model, adapters)
    assert isinstance(model.get_submodule(Q), MixtureLinear)
    mix.detach()
    assert model.get_submodule(Q) is original
    assert not any(isinstance(m, MixtureLinear) for m in model.modules())
    assert torch.equal(logits(model, ids()), logits(fresh(), ids()))
    Mixture.attach(model, adapters)  # attachable again after detach


def test_state_dict_stays_the_base_models(mixed):
    model, mix = mixed
    with mix.detached():
        keys = set(model.state_dict())
    assert keys == set(fresh().state_dict())
    assert isinstance(model.get_submodule(Q), MixtureLinear)  # re-attached after the context


def greedy_without_cache(model, x, steps):
    for _ in range(steps):
        with torch.no_grad():
            nxt = model(input_ids=x, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
        x = torch.cat([x, nxt], dim=1)
    return x


@pytest.mark.parametrize("source", ["per_row", "router"])
def test_generate_with_kv_cache_matches_no_cache_greedy_loop(mixed, source):
    model, mix = mixed
    x = ids(batch=2, length=6, seed=4)
    if source == "per_row":
        mix.use(Static([[0.9, 0.1, 0.0], [0.0, 0.3, 1.2]]))
    else:
        torch.manual_seed(0)
        router = LinearRouter(64, 3, num_layers=2)
        for h in router.heads:
            torch.nn.init.normal_(h.weight, std=1.0)
        mix.use(Routed(router, GateConfig(temperature=0.5)))
    expected = greedy_without_cache(model, x, 8)
    with torch.no_grad():
        got = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=8, do_sample=False,
                             use_cache=True, pad_token_id=0, eos_token_id=None)
    assert torch.equal(got, expected)


def test_router_with_constant_logits_equals_static_weights(mixed):
    model, mix = mixed
    router = LinearRouter(64, 3)
    router.heads[0].bias.data = torch.tensor([1.0, -0.5, 0.2])
    x = ids()
    gate = GateConfig(temperature=2.0, importance=[1.0, 0.5, 2.0])
    static = torch.softmax(torch.tensor([1.0, -0.5, 0.2]) / 2.0, 0) * torch.tensor([1.0, 0.5, 2.0])
    with mix.using(Static(static)):
        expected = logits(model, x)
    mix.use(Routed(router, gate))
    torch.testing.assert_close(logits(model, x), expected, atol=1e-5, rtol=0)
    mix.use(Static(None))
    with mix.using(Static(static)):
        torch.testing.assert_close(logits(model, x), expected, atol=0, rtol=0)


def test_gate_top_k_renormalises():
    p = GateConfig(top_k=1)(torch.tensor([[0.1, 2.0, -1.0]]))
    assert torch.equal(p, torch.tensor([[0.0, 1.0, 0.0]]))
    p = GateConfig(top_k=2)(torch.tensor([0.0, 0.0, -50.0]))
    torch.testing.assert_close(p, torch.tensor([0.5, 0.5, 0.0]))


def test_bad_weights_are_refused_with_a_clear_error(mixed):
    model, mix = mixed
    with pytest.raises(AxialError, match="K=3"):
        mix.use(Static([1.0, 0.0]))
    with pytest.raises(AxialError, match="unknown expert"):
        mix.use(Static({"helpfull": 1.0}))
    with pytest.raises(AxialError, match="finite"):
        mix.use(Static([float("nan"), 0, 0]))
    mix.use(Static([[1, 0, 0], [0, 1, 0]]))
    with pytest.raises(AxialError, match="2 rows but the batch has 3"):
        logits(model, ids(batch=3))


def test_dict_weights_fill_missing_experts_with_zero(mixed):
    _, mix = mixed
    mix.use(Static({"harmless": 0.5}))
    assert mix.current_weights.tolist() == [0.0, 0.5, 0.0]


def test_dora_and_other_peft_types_are_refused(tmp_path):
    dora = write_random_adapter(fresh, tmp_path / "dora", r=2, target_modules=["q_proj"], use_dora=True)
    with pytest.raises(AxialError, match="use_dora"):
        load_experts([dora])
    cfg = json.loads((dora / "adapter_config.json").read_text())
    cfg["peft_type"] = "IA3"
    (dora / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(AxialError, match="peft_type 'IA3'"):
        load_experts([dora])


def test_experts_for_another_model_are_refused(adapters):
    other = tiny_llama(seed=0, layers=1)[0]
    with pytest.raises(AxialError, match="does not have"):
        Mixture.attach(other, adapters)


def test_duplicate_names_and_double_attach_are_refused(adapters):
    with pytest.raises(AxialError, match="duplicate expert"):
        load_experts([adapters[0], adapters[0]])
    model = fresh()
    Mixture.attach(model, adapters)
    with pytest.raises(AxialError, match="already has a mixture"):
        Mixture.attach(model, adapters)


def test_target_modules_restricts_what_is_replaced(adapters):
    model = fresh()
    mix = Mixture.attach(model, adapters, target_modules=["v_proj"])
    assert sorted(mix.modules) == ["model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.v_proj"]


@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 4, 3)])
def test_gradients_through_weights_and_input_are_exact(shape):
    from axial.mixture.layer import RoutingState

    torch.manual_seed(0)
    base = torch.nn.Linear(5, 6).double()
    A, B = torch.randn(3 * 2, 5).double(), torch.randn(6, 3 * 2).double()
    state = RoutingState()
    layer = MixtureLinear(base, A, B, torch.tensor([1.0, 0.5, 2.0]), 2, state, None)
    x = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
    g = torch.rand(*shape, dtype=torch.float64, requires_grad=True)

    def f(x, g):
        state.weights = g
        return layer(x)

    assert torch.autograd.gradcheck(f, (x, g))


def test_attach_accepts_a_single_folder(adapters):
    mix = Mixture.attach(fresh(), str(adapters[0]))
    assert mix.expert_names == ["helpful"]


@pytest.mark.parametrize("shape", [(3,), (4, 3), (4, 1, 3)])
def test_half_precision_on_cpu_decodes_the_lora_path_in_fp32(shape):
    """bf16 on CPU: few rows (decoding) take the LoRA path in fp32, many rows (prefill) in bf16; both agree with
    an fp32 reference to bf16 accuracy, and the few-row path is the closer one."""
    from axial.mixture.layer import SMALL_ROWS, RoutingState

    torch.manual_seed(0)
    base32 = torch.nn.Linear(64, 48)
    A, B = torch.randn(3 * 4, 64) * 0.3, torch.randn(48, 3 * 4) * 0.3
    scaling = torch.tensor([1.0, 0.5, 2.0])
    g = torch.rand(*shape)
    state32, state16 = RoutingState(), RoutingState()
    ref = MixtureLinear(base32, A, B, scaling, 4, state32, None)
    base16 = torch.nn.Linear(64, 48).to(torch.bfloat16)
    base16.load_state_dict({k: v.to(torch.bfloat16) for k, v in base32.state_dict().items()})
    half = MixtureLinear(base16, A, B, scaling, 4, state16, None)
    assert half.lora_A.dtype == torch.float32  # the factors stay fp32 on CPU
    x = torch.randn(4, 1, 64).to(torch.bfloat16)  # 4 rows: the decoding path
    wide = torch.cat([x, torch.randn(4, SMALL_ROWS, 64).to(torch.bfloat16)], dim=1)  # 4 x 17 rows: prefill path
    state32.weights = g
    state16.weights = g
    small_out = half(x)
    assert small_out.dtype == torch.bfloat16
    want = ref(x.float())
    if len(shape) == 3:  # per-token weights must match the tokens: widen them for the prefill input
        gw = torch.cat([g, torch.rand(4, SMALL_ROWS, 3)], dim=1)
        state16.weights, state32.weights = gw, gw
    wide_out = half(wide)[:, :1]
    err_small = (small_out.float() - want).abs().max()
    err_wide = (wide_out.float() - want).abs().max()
    scale = want.abs().max()
    assert err_small <= 0.01 * scale and err_wide <= 0.02 * scale
    assert err_small <= err_wide


def test_weight_columns_are_cached_per_tensor_and_cleared_when_weights_are_set():
    from axial.mixture.layer import RoutingState

    state = RoutingState()
    g = torch.tensor([1.0, 2.0])
    state.weights = g
    first = state.columns(g, 0, 2, torch.float32)
    assert state.columns(g, 0, 2, torch.float32) is first  # shared by the modules of a layer
    g.mul_(2)  # in place: the version changes
    assert state.columns(g, 0, 2, torch.float32).tolist() == [2.0, 2.0, 4.0, 4.0]
    g.data.fill_(1.0)  # through .data: no version bump, but setting the weights again clears the cache
    state.weights = g
    assert state.columns(g, 0, 2, torch.float32).tolist() == [1.0, 1.0, 1.0, 1.0]
