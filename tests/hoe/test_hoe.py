"""HoE: router experts restricted to their nearest experts, trained with Tchebycheff, mixed by preference routing."""

import json

import pytest
import torch

from axial.errors import AxialError
from axial.hoe import HoEConfig, default_anchor_preferences, expert_positions, nearest_experts, train_hoe
from axial.mixture import Mixture, Routed, Static, load_experts, save_expert
from axial.mixture.testing import write_random_adapter
from axial.mocae import load_router
from axial.mocae.router import MoCaERouter
from axial.preference import MergeConfig, merge_experts, parse_preference
from axial.sources import parse_source
from axial.testing import tiny_llama

AXES = ["helpful", "harmless", "honest"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("hoe")
    experts = [str(write_random_adapter(lambda: tiny_llama()[0], root / a, seed=i, axis=a, r=4, lora_alpha=8,
                                        target_modules=["q_proj", "v_proj", "down_proj"]))
               for i, a in enumerate(AXES)]
    files = []
    for a, axis in enumerate(AXES):
        path = root / f"{axis}.jsonl"
        marker = ["alpha", "bravo", "charlie"][a]
        path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"{marker} {marker} {i}"}],
                                            "chosen": f"good {i}", "rejected": f"bad {i} !"}) + "\n"
                                for i in range(60)))
        files.append(f"{axis}={path}")
    return root, experts, files


def test_nearest_experts_keep_ties_and_merged_positions(setup, tmp_path):
    root, experts, _ = setup
    loaded = load_experts(experts)
    merged = merge_experts(loaded, parse_preference("helpful=0.5,harmless=0.5"), MergeConfig(method="linear"))
    positions = expert_positions([*loaded, merged], AXES)
    centre, mid, near_helpful = (parse_preference(p) for p in ("helpful=1,harmless=1,honest=1",
                                                                "helpful=0.5,honest=0.5",
                                                                "helpful=0.8,harmless=0.2"))
    axis_only = {k: v for k, v in positions.items() if k in AXES}
    assert nearest_experts(centre, axis_only, 2) == AXES  # three-way tie at the centre: all kept
    assert nearest_experts(mid, axis_only, 2) == ["helpful", "honest"]
    assert nearest_experts(near_helpful, positions, 2) == ["helpful", merged.name]
    assert nearest_experts(mid, axis_only, 1) == ["helpful", "honest"]  # tied at distance 0.71
    assert [str(p) for p in default_anchor_preferences(AXES)] == [
        "helpful=0.5,harmless=0.5", "helpful=0.5,honest=0.5", "harmless=0.5,honest=0.5",
        "helpful=0.3333,harmless=0.3333,honest=0.3333"]
    stray = loaded.experts[0]
    stray.name = "other"
    with pytest.raises(AxialError, match="no place in preference space"):
        expert_positions([stray], AXES)


def test_a_router_expert_only_ever_weights_its_allowed_experts(setup, tmp_path):
    _, experts, _ = setup
    model, tok = tiny_llama()
    mixture = Mixture.attach(model, experts)
    for granularity in ("sequence", "token"):
        router = MoCaERouter(64, AXES, 2, granularity=granularity, allowed=["helpful", "honest"])
        with torch.no_grad():
            router.w1.normal_(0, 5.0)  # whatever the heads say, harmless must stay at 0
            router.b1[:, 1] = 50.0
        router.bind(model)
        mixture.use(Routed(router))
        ids = torch.randint(0, 250, (3, 9), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
        for g in mixture.state.gates.values():
            assert torch.all(g[..., 1] == 0)
            torch.testing.assert_close(g.sum(-1), torch.ones(g.shape[:-1]))
        mixture.use(Static(None))
        router.unbind()
    with pytest.raises(AxialError, match="non-empty subset"):
        MoCaERouter(64, AXES, 2, allowed=["nope"])


def test_train_hoe_writes_router_experts_and_hoe_source_mixes_them(setup, tmp_path):
    _, experts, files = setup
    base = tiny_llama()
    cfg = HoEConfig(experts=experts, data=files, out=str(tmp_path / "set"), steps=6, pair_batch_size=3,
                    per_axis_limit=None, max_length=48, max_response_tokens=8, validation_per_axis=3,
                    ideal_per_axis=4, learning_rate=1e-2, dtype="fp32", n_nearest=2)
    out = train_hoe(cfg, base=base)
    meta = json.loads((out / "hoe.json").read_text())
    assert meta["experts"] == AXES and len(meta["router_experts"]) == 4
    assert set(meta["ideal"]) == set(AXES) and all(meta["ideal_expert"][a] in AXES for a in AXES)
    allowed = {r["name"]: r["allowed"] for r in meta["router_experts"]}
    assert allowed["helpful0p50_harmless0p50"] == ["helpful", "harmless"]
    assert allowed["helpful0p33_harmless0p33_honest0p33"] == AXES
    for name, names in allowed.items():
        loaded = load_router(out / "routers" / name)
        assert loaded.router.allowed == names
        m = json.loads((out / "routers" / name / "train_metrics.json").read_text())
        assert len(m["history"]) == 6 and "tchebycheff" in m["heldout"]
    anchors = json.loads((out / "anchors.json").read_text())["anchors"]
    assert [a["name"] for a in anchors if a.get("router") is None] == AXES  # vertices: the axis experts

    model, tok = base
    mixture = Mixture.attach(model, experts)
    # a vertex is the axis expert alone (static); between a vertex and a midpoint, routed
    assert isinstance(mixture.resolve(parse_source(f"hoe:honest=1?set={out}")), Static)
    pref = f"hoe:helpful=0.75,harmless=0.25?set={out}"
    resolved = mixture.resolve(parse_source(pref))
    assert isinstance(resolved, Routed)
    ids = tok(["<|im_start|>user\nalpha alpha 3<|im_end|>\n"], return_tensors="pt")
    mixture.use(resolved)
    with torch.no_grad():
        model(**ids)
    w2 = {k: v.clone() for k, v in mixture.state.gates.items()}
    # w2 = 0.5 * (helpful expert, one-hot) + 0.5 * (router expert at helpful=0.5,harmless=0.5)
    loaded = load_router(out / "routers" / "helpful0p50_harmless0p50", mixture)
    mixture.use(loaded.routed)
    with torch.no_grad():
        model(**ids)
    # Compared in the first block, where both runs see the same hidden states (later blocks see states the
    # different mixtures made).
    first = min(w2)
    g = mixture.state.gates[first]
    torch.testing.assert_close(w2[first], 0.5 * torch.tensor([1.0, 0, 0]) + 0.5 * g, atol=1e-6, rtol=0)
    assert all(torch.all(w[..., 2] == 0) for w in w2.values())  # honest is neither anchor's expert
    mixture.detach()
    # the set refuses a mixture over other experts
    other = Mixture.attach(model, experts[:2])
    with pytest.raises(AxialError, match="routes over experts"):
        other.resolve(parse_source(pref))
    other.detach()
    with pytest.raises(AxialError, match="already holds a HoE set"):
        train_hoe(cfg, base=base)


def test_hoe_source_grammar():
    s = parse_source("hoe:helpful=0.7,harmless=0.3?set=runs/hoe&n=2")
    assert s.set == "runs/hoe" and s.n_nearest == 2 and s.reads_files
    assert parse_source(s.spec()) == s
    with pytest.raises(AxialError, match="option 'set' is required"):
        parse_source("hoe:helpful=1")


def test_hoe_with_a_merged_expert_places_it_and_routes_over_it(setup, tmp_path):
    _, experts, files = setup
    merged = merge_experts(load_experts(experts), parse_preference("helpful=0.5,harmless=0.5"),
                           MergeConfig(method="ties", density=0.5))
    folder = save_expert(merged, tmp_path / "merged")
    cfg = HoEConfig(experts=[*experts, str(folder)], data=files, out=str(tmp_path / "set"), steps=2,
                    pair_batch_size=3, per_axis_limit=None, max_length=48, max_response_tokens=8,
                    validation_per_axis=0, ideal_per_axis=2, dtype="fp32", anchors=["helpful=0.5,harmless=0.5",
                                                                                     "harmless=0.5,honest=0.5"])
    out = train_hoe(cfg, base=tiny_llama())
    meta = json.loads((out / "hoe.json").read_text())
    allowed = {r["name"]: r["allowed"] for r in meta["router_experts"]}
    # the merged expert sits exactly there; helpful and harmless tie for second nearest and are kept
    assert allowed["helpful0p50_harmless0p50"] == ["helpful", "harmless", merged.name]
    assert set(allowed["harmless0p50_honest0p50"]) >= {"harmless", "honest"}
    anchors = json.loads((out / "anchors.json").read_text())["anchors"]
    # the merged expert's own (static) anchor gives way to the router expert at the same preference
    assert merged.name not in [a["name"] for a in anchors]
