import json
import random

import numpy as np
import pytest

from axial.errors import AxialError
from axial.evaluate.pareto import ParetoConfig, dominates, front_mask, hypervolume, pareto, sweep
from axial.mixture import Mixture, load_experts
from axial.mixture.testing import write_random_adapter
from axial.preference import MergeConfig, merge_experts, parse_preference
from axial.testing import tiny_llama

AXES = ["helpful", "harmless", "honest"]


def brute_force_hv(points, ref, samples=200_000, seed=0):
    rng = np.random.default_rng(seed)
    hi = points.max(axis=0)
    u = rng.uniform(ref, hi, size=(samples, len(ref)))
    covered = (u[:, None, :] <= points[None]).all(-1).any(-1)
    return covered.mean() * np.prod(hi - ref)


def test_hypervolume_2d_by_hand():
    pts = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [1.5, 1.5]])  # the last is dominated
    assert hypervolume(pts, np.zeros(2)) == pytest.approx(3 + 2 + 1)
    assert hypervolume(pts[:1], np.zeros(2)) == pytest.approx(3)
    assert hypervolume(np.array([[-1.0, 5.0]]), np.zeros(2)) == 0.0


@pytest.mark.parametrize("d", [3, 4])
def test_hypervolume_matches_monte_carlo(d):
    pts = np.random.default_rng(d).uniform(0, 1, size=(7, d))
    assert hypervolume(pts, np.zeros(d)) == pytest.approx(brute_force_hv(pts, np.zeros(d)), abs=0.01)


def test_dominance_and_front():
    pts = np.array([[1, 1], [2, 2], [3, 0], [2, 2]])
    assert dominates(pts[1], pts[0]) and not dominates(pts[1], pts[3])
    assert front_mask(pts).tolist() == [False, True, True, True]


def fresh():
    return tiny_llama(seed=0)[0]


@pytest.fixture(scope="module")
def mixture(tmp_path_factory):
    root = tmp_path_factory.mktemp("p")
    experts = load_experts([write_random_adapter(fresh, root / a, seed=i, axis=a, r=2, target_modules=["q_proj"])
                            for i, a in enumerate(AXES)])
    merged = merge_experts(experts, parse_preference("helpful=0.5,harmless=0.5"), MergeConfig(method="ties"))
    return Mixture.attach(fresh(), experts + type(experts)([merged]))


def fake_scorer(mixture, n_items=20):
    """Per-item scores that depend on each source's expert weights: a stand-in for generation + judges."""
    rng = random.Random(0)
    noise = [[rng.gauss(0, 0.05) for _ in range(n_items)] for _ in AXES]
    calls = []

    def score(sources):
        out = []
        for source in sources:
            w = mixture.resolve(source).weights
            w = [0.0] * mixture.num_experts if w is None else mixture.as_weights(w).tolist()
            calls.append(w)
            # the merged expert (index 3) is better than the linear mix on both of its axes
            value = [w[0] + 0.6 * w[3], w[1] + 0.6 * w[3], w[2]]
            out.append({a: [value[i] + e for e in noise[i]] for i, a in enumerate(AXES)})
        return out

    return score, calls


def test_pareto_sweep_reports_hypervolume_and_dominance(mixture, tmp_path):
    score, calls = fake_scorer(mixture)
    cfg = ParetoConfig(points_per_edge=5, bootstrap_resamples=200)
    report = pareto(mixture, AXES, score, cfg, out=tmp_path)
    kinds = [p["kind"] for p in report["points"]]
    assert kinds.count("hoe") == 15 and kinds.count("linear") == 15
    assert kinds.count("expert") == 3 and "uniform" in kinds and "base" in kinds
    hv = report["hypervolume"]
    assert hv["hoe"]["estimate"] > hv["linear"]["estimate"]
    assert hv["hoe_minus_linear"]["ci95"][0] > 0
    d = report["hoe_dominates_linear"]
    assert d["n"] == 15 and 0 < d["count"] < 15  # only where the merged anchor is used
    rows = {r["hoe"]: r for r in report["per_preference"]}
    assert len(rows) == 15 and sum(r["dominates"] for r in rows.values()) == d["count"]
    # a vertex: HoE and linear are the same expert, so every difference is exactly 0
    vertex = rows[next(h for h in rows if "helpful=1" in h and "harmless" not in h)]
    assert vertex["identical"] and not vertex["dominates"] and not vertex["gain_without_loss"]
    assert all(v["estimate"] == 0 and v["ci95"] == [0, 0] for v in vertex["diff"].values())
    # where the merged anchor helps both of its axes by far more than the noise, the gain is significant
    assert report["hoe_gains_without_loss"]["count"] >= 1
    assert "gain without loss" in (tmp_path / "pareto.md").read_text()
    for name in ("pareto.json", "pareto.md", "pareto.png", "pareto_config.json", "points.jsonl"):
        assert (tmp_path / name).exists()
    distinct = {tuple(round(v, 9) for v in w) for w in calls}
    assert len(calls) == len(distinct) < 35  # equal weights (vertices, HoE = linear) are evaluated once
    # resume: nothing is evaluated again
    n_calls = len(calls)
    again = pareto(mixture, AXES, score, cfg, out=tmp_path)
    assert len(calls) == n_calls
    assert json.loads(json.dumps(again["hypervolume"])) == json.loads(json.dumps(hv))


def test_pareto_refuses_points_scored_on_different_items(mixture):
    sizes = iter(range(5, 100))

    def uneven(sources):
        return [{a: [0.5] * next(sizes) for a in AXES} for _ in sources]

    with pytest.raises(AxialError, match="different numbers of items"):
        pareto(mixture, AXES, uneven, ParetoConfig(points_per_edge=2, baselines=[], bootstrap_resamples=100))


def test_sweep_lists_points_with_their_sources():
    plan = sweep(["helpful", "harmless", "honest", "merged"], AXES, ParetoConfig(points_per_edge=2))
    specs = {p.label: s.spec() for p, s in plan}
    assert specs["hoe helpful=1"] == "pref:helpful=1"
    assert specs["linear honest=1"] == "weights:helpful=0,harmless=0,honest=1"
    assert specs["uniform"] == "uniform" and specs["base"] == "base" and specs["expert harmless"] == "expert:harmless"
    with_anchors = sweep(["helpful"], AXES, ParetoConfig(points_per_edge=2, baselines=[]), anchors="a.json")
    assert all(s.spec().endswith("?anchors=a.json") for _, s in with_anchors)


def test_pareto_cli_on_a_tiny_model(tiny_model_dir, tmp_path, monkeypatch):
    import axial.rewards
    from axial.cli import main
    from axial.rewards import Judge

    class LengthJudge(Judge):  # stands in for reward models: deterministic, no model download
        def __init__(self, axis):
            self.axis, self.name, self.kind = axis, f"len-{axis}", "test"

        def score(self, prompts, responses):
            return [len(r) % (3 + AXES.index(self.axis)) for r in responses]

    monkeypatch.setattr(axial.rewards, "load_judge", lambda spec, axis=None: LengthJudge(axis))
    experts = [write_random_adapter(fresh, tmp_path / a, seed=i, axis=a, r=2, target_modules=["q_proj"])
               for i, a in enumerate(AXES)]
    data = tmp_path / "prompts.jsonl"
    data.write_text("\n".join(json.dumps({"messages": [{"role": "user", "content": f"question {i}"}],
                                          "response": "x"}) for i in range(12)) + "\n")
    out = tmp_path / "sweep"
    main(["pareto", "--model", str(tiny_model_dir), "--experts", ",".join(map(str, experts)),
          "--prompts", str(data), "--judge", "helpful=a", "--judge", "harmless=b", "--judge", "honest=c",
          "--out", str(out),
          "--max-new-tokens", "3", "--dtype", "fp32", "points_per_edge=2", "bootstrap_resamples=100"])
    report = json.loads((out / "pareto.json").read_text())
    assert report["judges"]["honest"]["name"] == "len-honest"
    assert 0 < report["n_items"] < 12  # only the test half of the prompts
    assert len([p for p in report["points"] if p["kind"] == "hoe"]) == 3
    with pytest.raises(SystemExit):
        main(["pareto", "--model", str(tiny_model_dir), "--experts", str(experts[0]), "--prompts", str(data),
              "--judge", "helpful=a", "--out", str(tmp_path / "x")])
