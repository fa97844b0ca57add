import pytest
import torch

from axial.errors import AxialError
from axial.generate import GenerationConfig
from axial.mixture.testing import write_random_adapter
from axial.testing import tiny_llama
from axial.variants import VariantSpec, load_variant

AXES = ["helpful", "harmless", "honest"]


def fresh():
    return tiny_llama(seed=0)[0]


@pytest.fixture(scope="module")
def experts(tmp_path_factory):
    root = tmp_path_factory.mktemp("v")
    return [str(write_random_adapter(fresh, root / a, seed=i, axis=a, r=2, target_modules=["q_proj", "up_proj"]))
            for i, a in enumerate(AXES)]


@pytest.fixture()
def base():
    return tiny_llama(seed=0)


def weights_of(spec, base, experts):
    v = load_variant(VariantSpec(experts=experts, source=spec), base=base)
    w = v.mixture.current_weights
    return None if w is None else w.tolist()


@pytest.mark.parametrize("source, expected", [
    ("base", None),
    ("uniform", [1 / 3] * 3),
    ("expert:harmless", [0.0, 1.0, 0.0]),
    ("weights:helpful=1.5,honest=0.5", [1.5, 0.0, 0.5]),  # raw, not renormalised
    ("pref:helpful=3,honest=1", [0.75, 0.0, 0.25]),  # normalised to the simplex
])
def test_sources_set_the_expected_expert_weights(source, expected, base, experts):
    got = weights_of(source, base, experts)
    assert got == expected if expected is None else got == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("source, match", [
    ("expert:helpfull", "unknown expert 'helpfull'"),
    ("weights:kind=1", "field 'kind': unknown expert"),
    ("weights:helpful=x", "'x' is not a number"),
    ("pref:helpful=-1", "field 'helpful'"),
])
def test_bad_sources_are_errors_never_a_silent_base(source, match, base, experts):
    with pytest.raises(AxialError, match=match):
        load_variant(VariantSpec(experts=experts, source=source), base=base)


@pytest.mark.parametrize("source, match", [
    ("nope", "unknown source"), ("expert:", "needs an argument"), ("uniform:3", "takes no argument"),
])
def test_spec_validation(source, match, experts):
    with pytest.raises(AxialError, match=match):
        VariantSpec(experts=experts, source=source)
    with pytest.raises(AxialError, match="needs expert adapter folders"):
        VariantSpec(source="uniform")


def test_mocae_source_without_router_loader_is_a_clear_error(base, experts, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "axial.mocae", None)  # as if the MoCaE package were not installed
    with pytest.raises(AxialError, match="axial.mocae.load_router"):
        load_variant(VariantSpec(experts=experts, source="mocae:some/dir"), base=base)


def test_variants_on_one_base_attach_once_and_activate(base, experts):
    a = load_variant(VariantSpec(experts=experts, source="expert:helpful"), base=base)
    b = load_variant(VariantSpec(experts=experts, source="expert:honest"), base=base)
    plain = load_variant(VariantSpec(), base=base)
    assert a.mixture is b.mixture is plain.mixture
    assert plain.mixture.current_weights is None
    x = torch.randint(0, 250, (1, 5))

    def run(v):
        v.activate()
        with torch.no_grad():
            return v.model(input_ids=x).logits

    la, lb = run(a), run(b)
    assert not torch.allclose(la, lb)
    torch.testing.assert_close(run(a), la, atol=0, rtol=0)
    assert torch.equal(run(plain), fresh()(input_ids=x).logits.detach())
    assert a.generate(["hi"], GenerationConfig(max_new_tokens=3), progress=False)[0] is not None


def write_anchors(path, anchors):
    import json

    path.write_text(json.dumps({"anchors": anchors}))
    return path


def test_pref_source_with_an_anchors_file(base, experts, tmp_path):
    f = write_anchors(tmp_path / "a.json", [
        {"preference": "helpful=1", "weights": [1, 0, 0]},
        {"preference": "helpful=0.5,harmless=0.5", "weights": [0.2, 0.2, 0.6], "name": "odd"},
        {"preference": "harmless=1"},  # no weights: its λ
    ])
    got = weights_of(f"pref:helpful=0.75,harmless=0.25?anchors={f}", base, experts)
    assert got == pytest.approx([0.6, 0.1, 0.3], abs=1e-6)  # half anchor 1, half anchor 2


def test_pref_source_with_router_anchors(base, experts, tmp_path, monkeypatch):
    import axial.mocae
    from axial.mixture import GateConfig, LinearRouter

    router = LinearRouter(64, 3)
    router.heads[0].bias.data = torch.tensor([0.0, 1.0, 2.0])
    monkeypatch.setattr(axial.mocae, "load_router", lambda d, mixture: (router, GateConfig()), raising=False)
    f = write_anchors(tmp_path / "r.json", [{"preference": "helpful=1", "router": "some/router"},
                                            {"preference": "honest=1", "weights": [0, 0, 1]}])
    v = load_variant(VariantSpec(experts=experts, source=f"pref:helpful=0.5,honest=0.5?anchors={f}"), base=base)
    x = torch.randint(0, 250, (2, 4))
    with torch.no_grad():
        routed = v.model(input_ids=x).logits
    expected_w = 0.5 * torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0) + 0.5 * torch.tensor([0.0, 0.0, 1.0])
    v.mixture.set_router(None)
    with v.mixture.weights(expected_w), torch.no_grad():
        torch.testing.assert_close(routed, v.model(input_ids=x).logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("content, match", [
    ({"anchors": []}, "field 'anchors'"),
    ({"anchors": [{"preference": "helpful=-1"}]}, r"field 'anchors\[0\].preference'"),
    ({"anchors": [{"preference": "helpful=1", "colour": 1}]}, r"anchors\[0\]'.*unknown key"),
    ({"anchors": [{"preference": "helpful=1", "weights": [1, 0]}]}, "2 expert weights for 3 experts"),
])
def test_bad_anchor_files_name_the_field(content, match, base, experts, tmp_path):
    f = write_anchors(tmp_path / "bad.json", content["anchors"])
    with pytest.raises(AxialError, match=match):
        load_variant(VariantSpec(experts=experts, source=f"pref:helpful=1?anchors={f}"), base=base)
    with pytest.raises(AxialError, match="only option is"):
        load_variant(VariantSpec(experts=experts, source="pref:helpful=1?anchor=x"), base=base)
