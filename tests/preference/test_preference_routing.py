import pytest
import torch

from axial.errors import AxialError
from axial.mixture import GateConfig, LinearRouter, Mixture, Routed, Static, load_experts, save_expert
from axial.mixture.testing import write_random_adapter
from axial.preference import (
    Anchor,
    MergeConfig,
    anchor_experts,
    anchor_mixture,
    merge_experts,
    parse_preference,
)
from axial.testing import tiny_llama

AXES = ["helpful", "harmless", "honest"]


def fresh():
    return tiny_llama(seed=0)[0]


@pytest.fixture(scope="module")
def axis_adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("axis")
    targets = ["q_proj", "v_proj", "up_proj", "down_proj"]
    return [write_random_adapter(fresh, root / a, seed=i + 1, axis=a, r=2 + 2 * i, lora_alpha=8,
                                 target_modules=targets) for i, a in enumerate(AXES)]


def logits(model, x):
    with torch.no_grad():
        return model(input_ids=x).logits


def ids(batch=3, length=6):
    return torch.randint(0, 250, (batch, length), generator=torch.Generator().manual_seed(1))


def static_weights(mix, p, anchors=None):
    resolved = anchor_mixture(mix, p, anchors)
    assert isinstance(resolved, Static)
    return resolved.weights.tolist()


def test_axis_experts_alone_give_w2_equal_to_lambda(axis_adapters):
    mix = Mixture.attach(fresh(), axis_adapters)
    p = parse_preference("helpful=0.6,harmless=0.1,honest=0.3")
    assert static_weights(mix, p) == pytest.approx([0.6, 0.1, 0.3], abs=1e-6)
    mix.use(anchor_mixture(mix, p))
    assert mix.current_weights.tolist() == pytest.approx([0.6, 0.1, 0.3], abs=1e-6)


def test_a_mixed_preference_batch_equals_each_preference_alone(axis_adapters):
    model = fresh()
    mix = Mixture.attach(model, axis_adapters)
    prefs = [parse_preference(s) for s in ("helpful=1", "helpful=0.7,harmless=0.3", "harmless=0.2,honest=0.8")]
    x = ids(batch=3)
    mix.use(anchor_mixture(mix, prefs))
    batched = logits(model, x)
    for i, p in enumerate(prefs):
        mix.use(anchor_mixture(mix, p))
        torch.testing.assert_close(batched[i:i + 1], logits(model, x[i:i + 1]), atol=1e-4, rtol=0)


def test_preference_on_an_axis_without_expert_is_an_error(axis_adapters):
    mix = Mixture.attach(fresh(), axis_adapters[:2])
    with pytest.raises(AxialError, match="outside what the anchors span"):
        anchor_mixture(mix, parse_preference("honest=1"))


def test_linear_merge_at_full_rank_equals_the_output_level_mix(axis_adapters):
    experts = load_experts(axis_adapters)
    p = parse_preference("helpful=0.5,harmless=0.25,honest=0.25")
    merged = merge_experts(experts, p, MergeConfig(method="linear", rank=2 + 4 + 6))
    assert merged.meta["mean_relative_error"] < 1e-5
    x = ids()
    a, b = fresh(), fresh()
    Mixture.attach(a, [merged]).use(Static([1.0]))
    Mixture.attach(b, experts).use(Static(p.vector(experts.names)))
    torch.testing.assert_close(logits(a, x), logits(b, x), atol=1e-4, rtol=0)


def test_ties_merge_differs_from_linear_and_becomes_an_anchor(axis_adapters, tmp_path):
    experts = load_experts(axis_adapters)
    p = parse_preference("helpful=0.5,harmless=0.5")
    (ties,) = anchor_experts(experts, [p], MergeConfig(method="ties", density=0.3, rank=4))
    linear = merge_experts(experts, p, MergeConfig(method="linear", rank=4))
    module = next(iter(ties.factors))
    assert not torch.allclose(ties.factors[module].delta(), linear.factors[module].delta(), atol=1e-4)
    # saved with its anchor preference, it is picked up as an anchor by default
    folder = save_expert(ties, tmp_path / "ties")
    mix = Mixture.attach(fresh(), [*axis_adapters, folder])
    assert mix.expert_names[-1] == ties.name
    assert static_weights(mix, p) == pytest.approx([0, 0, 0, 1], abs=1e-6)
    w = static_weights(mix, parse_preference("helpful=0.75,harmless=0.25"))
    assert w == pytest.approx([0.5, 0, 0, 0.5], abs=1e-6)  # halfway between helpful and the merged anchor


def test_dare_is_reproducible_with_its_seed(axis_adapters):
    experts = load_experts(axis_adapters)
    p = parse_preference("helpful=0.5,honest=0.5")
    a = merge_experts(experts, p, MergeConfig(method="dare_ties", density=0.5, seed=3))
    b = merge_experts(experts, p, MergeConfig(method="dare_ties", density=0.5, seed=3))
    m = next(iter(a.factors))
    assert torch.equal(a.factors[m].delta(), b.factors[m].delta())


def test_merge_refuses_a_preference_without_expert(axis_adapters):
    with pytest.raises(AxialError, match=r"\['honest'\] have no expert"):
        merge_experts(load_experts(axis_adapters[:2]), parse_preference("honest=1"))


def constant_router(logit_values):
    r = LinearRouter(64, 3)
    r.heads[0].bias.data = torch.tensor(logit_values)
    return r


def test_router_anchors_mix_gated_router_outputs_per_row(axis_adapters):
    model = fresh()
    mix = Mixture.attach(model, axis_adapters)
    gate = GateConfig(temperature=1.0)
    la, lb = [2.0, 0.0, -1.0], [-1.0, 0.5, 1.5]
    anchors = [Anchor(parse_preference("helpful=1"), router=constant_router(la), gate=gate),
               Anchor(parse_preference("honest=1"), router=constant_router(lb), gate=gate),
               Anchor(parse_preference("harmless=1"))]  # no router: its weights are its λ
    eta_a, eta_b = torch.softmax(torch.tensor(la), 0), torch.softmax(torch.tensor(lb), 0)
    prefs = [parse_preference("helpful=0.25,honest=0.75"), parse_preference("harmless=0.5,helpful=0.5")]
    x = ids(batch=2)
    mix.use(anchor_mixture(mix, prefs, anchors))
    routed = logits(model, x)
    expected_w2 = [0.25 * eta_a + 0.75 * eta_b, 0.5 * eta_a + 0.5 * torch.tensor([0.0, 1.0, 0.0])]
    for i, w2 in enumerate(expected_w2):
        mix.use(Static(None))
        with mix.using(Static(w2)):
            torch.testing.assert_close(routed[i:i + 1], logits(model, x[i:i + 1]), atol=1e-4, rtol=0)
    assert isinstance(anchor_mixture(mix, prefs[0], anchors), Routed)
    # a preference served by static anchors only stays static (and foldable) even when routers exist
    assert isinstance(anchor_mixture(mix, parse_preference("harmless=1"), anchors), Static)


def test_merged_anchor_at_a_one_hot_preference_equals_that_expert(axis_adapters):
    experts = load_experts(axis_adapters)
    for method in ("ties", "dare_ties", "linear"):
        merged = merge_experts(experts, parse_preference("harmless=1"), MergeConfig(method=method, density=0.3))
        assert set(merged.factors) == set(experts["harmless"].factors)
        for m, f in experts["harmless"].factors.items():
            torch.testing.assert_close(merged.factors[m].delta(), f.delta(), atol=0, rtol=0)
    # and in the model: the one-hot merged anchor gives the expert's logits
    x = ids()
    a, b = fresh(), fresh()
    Mixture.attach(a, [merged]).use(Static([1.0]))
    Mixture.attach(b, experts).use(Static({"harmless": 1.0}))
    torch.testing.assert_close(logits(a, x), logits(b, x), atol=1e-5, rtol=0)


def test_ties_merge_is_full_strength_by_default(axis_adapters):
    experts = load_experts(axis_adapters)
    same = load_experts([axis_adapters[0], axis_adapters[0]], names=["helpful", "harmless"])
    p = parse_preference("helpful=0.5,harmless=0.5")
    m = next(iter(same["helpful"].factors))
    full_rank = MergeConfig(method="ties", density=1.0, rank=64)
    # two copies of one expert at (½, ½): full strength gives that expert back, PEFT's disjoint mean half of it
    full = merge_experts(same, p, full_rank).factors[m].delta()
    peft = merge_experts(same, p, full_rank.replace(strength="peft")).factors[m].delta()
    torch.testing.assert_close(full, same["helpful"].factors[m].delta(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(peft, 0.5 * same["helpful"].factors[m].delta(), atol=1e-5, rtol=1e-4)
    # every entry of a full-strength TIES merge is a convex combination of the experts' (pruned) entries
    p = parse_preference("helpful=0.8,harmless=0.2")
    cfg = MergeConfig(method="ties", density=0.5, rank=64)
    merged = merge_experts(experts, p, cfg).factors[m].delta()
    a, b = experts["helpful"].factors[m].delta(), experts["harmless"].factors[m].delta()
    lo, hi = torch.minimum(a, b).clamp(max=0), torch.maximum(a, b).clamp(min=0)
    assert bool(((merged >= lo - 1e-4) & (merged <= hi + 1e-4)).all())
    assert merged.norm() > 0.6 * merge_experts(experts, p, cfg.replace(method="linear")).factors[m].delta().norm()
