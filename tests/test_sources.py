"""Weight sources (axial.sources): the one grammar, every kind's resolution, and variants built on them."""

import pytest
import torch

from axial.errors import AxialError
from axial.generate import GenerationConfig, generate_responses
from axial.mixture import GateConfig, LinearRouter, Mixture, Routed, Static
from axial.mixture.testing import write_random_adapter
from axial.sources import (
    SOURCE_KINDS,
    Base,
    Expert,
    MoCaE,
    Pref,
    Uniform,
    Weights,
    parse_source,
)
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
    ("nope", "unknown kind 'nope'"), ("expert:", "needs an expert name"), ("uniform:3", "takes no argument"),
    ("base:", "takes no argument"), ("", "empty"), ("mocae:d?top_k=x", "option 'top_k': expected a whole number"),
    ("mocae:d?colour=red", "unknown option 'colour'"), ("mocae:d?top_k=1&top_k=2", "option 'top_k' given twice"),
    ("pref:helpful=1?n=0", "option 'n': must be >= 1"), ("weights:a=1,a=2", "field 'a': given twice"),
    ("weights:a=inf", "must be finite"), ("mocae:d?calibration=maybe", "expected one of"),
])
def test_grammar_errors_name_the_problem(source, match, experts):
    with pytest.raises(AxialError, match=match):
        parse_source(source)
    with pytest.raises(AxialError, match=match):
        VariantSpec(experts=experts, source=source)


def test_a_source_needs_experts_unless_it_is_the_base():
    with pytest.raises(AxialError, match="needs expert adapter folders"):
        VariantSpec(source="uniform")
    VariantSpec(source="base")


@pytest.mark.parametrize("text, expected", [
    ("base", Base()), ("uniform", Uniform()), ("expert:honest", Expert("honest")),
    ("weights:helpful=1.5,honest=0.5", Weights((("helpful", 1.5), ("honest", 0.5)))),
    ("mocae:runs/r?top_k=1&calibration=none", MoCaE("runs/r", 1, "none", None)),
])
def test_parse_gives_typed_values_that_round_trip(text, expected):
    parsed = parse_source(text)
    assert parsed == expected
    assert parse_source(parsed.spec()) == parsed
    assert parse_source(parsed) is parsed
    assert hash(parsed) == hash(parse_source(text))  # frozen: usable as a cache / batch key


def test_pref_normalises_and_round_trips_with_options():
    p = parse_source("pref:helpful=3,honest=1?anchors=a/b.json&n=2")
    assert isinstance(p, Pref) and p.anchors == "a/b.json" and p.n_nearest == 2
    assert p.preference.as_dict() == {"helpful": 0.75, "harmless": 0.0, "honest": 0.25}
    assert parse_source(p.spec()) == p
    assert p.reads_files and not parse_source("pref:helpful=1").reads_files
    assert parse_source("pref:honest=1,helpful=3") == parse_source("pref:helpful=0.75,honest=0.25")


def test_every_kind_is_registered_with_an_example():
    assert set(SOURCE_KINDS) >= {"base", "uniform", "expert", "weights", "pref", "mocae"}
    assert all(cls.example for cls in SOURCE_KINDS.values())


def test_mocae_source_with_a_missing_router_is_a_clear_error(base, experts):
    with pytest.raises(AxialError, match="expected mocae.json"):
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
    with v.mixture.using(Static(expected_w)), torch.no_grad():
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
    with pytest.raises(AxialError, match="unknown option 'anchor'"):
        load_variant(VariantSpec(experts=experts, source="pref:helpful=1?anchor=x"), base=base)


def test_uniform_is_over_single_objective_experts_not_merged_anchors(base, experts):
    from axial.mixture import load_experts
    from axial.preference import MergeConfig, merge_experts, parse_preference

    axis = load_experts(experts)
    merged = merge_experts(axis, parse_preference("helpful=0.5,harmless=0.5"), MergeConfig(method="linear"))
    mix = Mixture.attach(base[0], axis + type(axis)([merged]))
    assert mix.resolve(Uniform()).weights == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])


def test_a_preference_the_anchors_cannot_reach_is_an_error(base, experts):
    mix = Mixture.attach(base[0], experts[:2])  # helpful, harmless: no honest expert
    with pytest.raises(AxialError, match="outside what the anchors span"):
        mix.use(parse_source("pref:honest=1"))


def test_resolution_is_cached_per_source(base, experts):
    mix = Mixture.attach(base[0], experts)
    a = mix.resolve(parse_source("pref:helpful=0.5,honest=0.5"))
    assert mix.resolve(parse_source("pref:honest=0.5,helpful=0.5")) is a
    with pytest.raises(AxialError, match="parse strings with axial.sources.parse_source"):
        mix.use("uniform")


def test_use_rows_mixes_static_and_routed_rows_exactly(base, experts):
    """One batch, a source per row (base, static, per-token router): each row equals that source run alone."""
    model, _ = base
    mix = Mixture.attach(model, experts)
    router = LinearRouter(64, 3, num_layers=2)
    for h in router.heads:
        torch.nn.init.normal_(h.weight, std=0.5)
    rows = [Base(), parse_source("pref:helpful=0.2,honest=0.8"), Routed(router, GateConfig(temperature=0.7)),
            Expert("harmless")]
    x = torch.randint(0, 250, (4, 6))
    with torch.no_grad():
        mix.use_rows(rows)
        batched = model(input_ids=x).logits
        for i, src in enumerate(rows):
            mix.use(src)
            alone = model(input_ids=x[i:i + 1]).logits
            torch.testing.assert_close(batched[i:i + 1], alone, atol=1e-5, rtol=0)
    mix.use(Base())
    assert mix.current_weights is None and mix.router is None


def test_generate_with_a_source_per_prompt(base, experts):
    model, tok = base
    mix = Mixture.attach(model, experts)
    prompts = ["abcd", "wxyz", "pqrs"]
    sources = [Expert("helpful"), Expert("honest"), parse_source("weights:helpful=0.3,harmless=0.3,honest=0.4")]
    cfg = GenerationConfig(max_new_tokens=6, batch_size=3)
    batched = generate_responses(model, tok, prompts, cfg, progress=False, row_kwargs=mix.row_sources(sources))
    alone = []
    for p, src in zip(prompts, sources, strict=True):
        mix.use(src)
        alone.append(generate_responses(model, tok, [p], cfg, progress=False)[0])
    assert batched == alone
