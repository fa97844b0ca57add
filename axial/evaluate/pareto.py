"""`pareto`: sweep preferences, score every point on every axis, and compare fronts by hypervolume.

`sweep` lists the points as (Point, source) pairs — preference routing at each λ (`pref:λ`, through the given
anchors), linear weight interpolation of the axis experts (`weights:λ`), uniform, each expert, base — and
`pareto` scores them with one function that takes a list of sources (`generation_scorer`: every distinct
source's responses generated together, one source per batch row, then judged), on the same held-out prompts.
Because items are shared, the hypervolume difference between preference routing and linear interpolation gets
a paired bootstrap CI (prompts resampled jointly for every point), and "dominates linear at λ" is counted per
preference.

Note: with only single-axis LoRA experts as anchors, `pref:λ` *is* linear interpolation (w2 = λ exactly, and
interpolating LoRA task vectors is linear in the output); the two differ once merged anchor experts
(axial merge-experts) or anchor routers are added, which is what this comparison measures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import typer
from tqdm.auto import tqdm

from axial import cliopts
from axial.config import Config
from axial.errors import AxialError
from axial.io import append_jsonl, atomic_output, atomic_write_json, atomic_write_text, read_jsonl_resumable
from axial.preference.preference import parse_preference, simplex_grid
from axial.sources import Base, Expert, HoE, Pref, Source, Uniform, Weights

BASELINES = ("linear", "uniform", "experts", "base")


@dataclass
class ParetoConfig(Config):
    points_per_edge: int = 5  # simplex grid: 3 axes x 5 per edge = 15 preferences
    preferences: list[str] = field(default_factory=list)  # explicit list instead of the grid
    baselines: list[str] = field(default_factory=lambda: list(BASELINES))
    bootstrap_resamples: int = 1000
    seed: int = 0

    def validate(self) -> None:
        unknown = sorted(set(self.baselines) - set(BASELINES))
        if unknown:
            raise AxialError(f"ParetoConfig.baselines: unknown {unknown}; choose from {list(BASELINES)}")
        if self.points_per_edge < 2:
            raise AxialError(f"ParetoConfig.points_per_edge: must be >= 2, got {self.points_per_edge}")
        if self.bootstrap_resamples < 100:
            raise AxialError(f"ParetoConfig.bootstrap_resamples: use >= 100, got {self.bootstrap_resamples}")


@dataclass
class Point:
    label: str
    kind: str  # hoe | linear | uniform | expert | base
    preference: dict[str, float] | None
    scores: dict[str, list[float]]  # axis -> per-item scores

    def means(self, axes: Sequence[str]) -> np.ndarray:
        return np.array([np.mean(self.scores[a]) for a in axes])


# ---- geometry --------------------------------------------------------------------------------------------
def hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume dominated by `points` (maximisation) above `ref`, by recursive slicing.

    Exact in any dimension; cost grows like n^(d-1), fine for the tens of points a sweep produces.
    """
    pts = np.asarray(points, dtype=float)
    ref = np.asarray(ref, dtype=float)
    pts = pts[(pts > ref).all(axis=1)] if len(pts) else pts
    if len(pts) == 0:
        return 0.0
    if pts.shape[1] == 1:
        return float(pts[:, 0].max() - ref[0])
    # Slice along the last axis: between consecutive levels, the dominated region's cross-section is the
    # (d-1)-dimensional hypervolume of the points at or above that level.
    order = np.argsort(-pts[:, -1], kind="stable")
    pts = pts[order]
    levels = pts[:, -1]
    total = 0.0
    for i in range(len(pts)):
        lower = levels[i + 1] if i + 1 < len(pts) else ref[-1]
        height = levels[i] - lower
        if height > 0:
            total += height * hypervolume(pts[: i + 1, :-1], ref[:-1])
    return total


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool((a >= b).all() and (a > b).any())


def front_mask(points: np.ndarray) -> np.ndarray:
    """True for points no other point dominates."""
    return np.array([not any(dominates(q, p) for j, q in enumerate(points) if j != i) for i, p in enumerate(points)])


# ---- sweep ----------------------------------------------------------------------------------------------
def sweep(expert_names: Sequence[str], axes: Sequence[str], config: ParetoConfig,
          anchors: str | None = None, hoe_set: str | None = None) -> list[tuple[Point, Source]]:
    """The sweep's points, each with the source that produces it, in sweep order.

    The preference points ("hoe") are `hoe:λ?set=DIR` when a HoE router-expert set is given (axial.hoe), else
    `pref:λ` through `anchors` (an anchors JSON file; default: the experts' own anchors, which over axis experts
    alone is linear interpolation again).
    """
    if config.preferences:
        prefs = [parse_preference(p, axes) for p in config.preferences]
    else:
        prefs = simplex_grid(list(axes), config.points_per_edge)
    axis_experts = [n for n in expert_names if n in axes]
    if hoe_set is not None and anchors is not None:
        raise AxialError("pareto: give a HoE set or an anchors file for the preference points, not both")
    out: list[tuple[Point, Source]] = [
        (Point(f"hoe {p}", "hoe", p.as_dict(), {}), HoE(p, str(hoe_set)) if hoe_set else Pref(p, anchors))
        for p in prefs]
    if "linear" in config.baselines:
        # Rewarded-Soups-style interpolation of the axis experts' task vectors: w = λ on axis experts only.
        out += [(Point(f"linear {p}", "linear", p.as_dict(), {}),
                 Weights.of({n: p.as_dict().get(n, 0.0) for n in axis_experts})) for p in prefs]
    if "uniform" in config.baselines:
        out.append((Point("uniform", "uniform", None, {}), Uniform()))
    if "experts" in config.baselines:
        out += [(Point(f"expert {n}", "expert", None, {}), Expert(n)) for n in axis_experts]
    if "base" in config.baselines:
        out.append((Point("base", "base", None, {}), Base()))
    return out


Scorer = Callable[[Sequence[Source]], list[dict[str, list[float]]]]


def _output_key(mixture, source: Source) -> tuple:
    """Sources with the same key produce the same outputs: equal static weights (a vertex of the grid, or
    preference routing = linear where only axis anchors are used) are generated and judged once."""
    resolved = mixture.resolve(source)
    weights = getattr(resolved, "weights", "routed")
    if weights == "routed":
        return ("routed", source.spec())
    if weights is None:
        return ("static",) + (0.0,) * mixture.num_experts
    return ("static",) + tuple(round(float(v), 9) for v in mixture.as_weights(weights).flatten())


def pareto(mixture, axes: Sequence[str], score: Scorer, config: ParetoConfig | None = None, *,
           anchors: str | None = None, hoe_set: str | None = None, out: str | Path | None = None,
           judges: dict | None = None) -> dict:
    """Run the sweep: `score(sources)` -> one {axis: per-item scores} per source, for the points not yet scored.

    Every point must score the same items in the same order (the paired statistics rely on it). Writes
    DIR/pareto.json, pareto.md, pareto.png and pareto_config.json when `out` is given; resumes from
    DIR/points.jsonl (points already scored are not re-run). `judges` ({axis: Judge.describe()}) is
    recorded in the report; a weak judge is flagged in the Markdown.
    """
    cfg = config or ParetoConfig()
    axes = list(axes)
    done: dict[str, dict] = {}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "pareto_config.json")
        cache = out / "points.jsonl"
        if cache.exists():
            done = {d["label"]: d["scores"] for d in read_jsonl_resumable(cache) if d}
    plan = sweep(mixture.expert_names, axes, cfg, anchors, hoe_set)
    keys = {point.label: _output_key(mixture, source) for point, source in plan}
    by_key: dict[tuple, dict] = {keys[p.label]: done[p.label] for p, _ in plan if p.label in done}
    todo: dict[tuple, Source] = {}
    for point, source in plan:
        if keys[point.label] not in by_key:
            todo.setdefault(keys[point.label], source)
    if todo:
        scored = score(list(todo.values()))
        if len(scored) != len(todo):
            raise AxialError(f"pareto: the scorer returned {len(scored)} results for {len(todo)} sources")
        for key, scores in zip(todo, scored, strict=True):
            by_key[key] = {a: [float(s) for s in v] for a, v in scores.items()}
    points = []
    for point, _source in plan:
        point.scores = by_key[keys[point.label]]
        missing = [a for a in axes if a not in point.scores]
        if missing:
            raise AxialError(f"pareto: point '{point.label}' has no scores for axis/axes {missing}")
        if out is not None and point.label not in done:
            append_jsonl(out / "points.jsonl", [{"label": point.label, "scores": point.scores}])
        points.append(point)
    report = summarise(points, axes, cfg)
    report["sources"] = {point.label: source.spec() for point, source in plan}
    report["distinct_outputs_scored"] = len(set(keys.values()))
    if judges:
        report["judges"] = judges
    if out is not None:
        write_pareto_report(report, points, axes, out)
    return report


def generate_for_sources(variant, prompts: Sequence, sources: Sequence[Source], gen, *,
                         cache: str | Path | None = None, progress: bool = True,
                         desc: str = "sources", generate=None) -> dict[str, list[str]]:
    """{source spec: one greedy response per prompt} for every source. Rows of several sources share a batch
    (one source per row), and each finished source is appended to `cache` (JSONL), so a killed run resumes.
    `generate(prompts)`, when given, produces the responses of the mixture's current source instead (for
    benches with their own prompting, e.g. truthfulqa_gen's primer + plain completion); sources then run
    one after another."""
    from axial.generate import generate_responses

    prompts = list(prompts)
    done: dict[str, list[str]] = {}
    path = Path(cache) if cache is not None else None
    if path is not None:
        for row in read_jsonl_resumable(path):  # a line cut off by a kill is dropped and regenerated
            if len(row["responses"]) == len(prompts):
                done[row["source"]] = row["responses"]
    todo = list({s.spec(): s for s in sources if s.spec() not in done}.values())
    if generate is not None:
        for s in tqdm(todo, desc=desc, unit="source", disable=not progress):
            with variant.mixture.using(s):
                done[s.spec()] = list(generate(prompts))
            if path is not None:
                append_jsonl(path, [{"source": s.spec(), "responses": done[s.spec()]}])
        variant.activate()
        return {s.spec(): done[s.spec()] for s in sources}
    # Enough sources per chunk for a few full batches, so a checkpoint comes every few batches.
    per_chunk = max(1, gen.batch_size * 4 // max(1, len(prompts)))
    for i in tqdm(range(0, len(todo), per_chunk), desc=desc, unit="chunk", disable=not progress):
        chunk = todo[i:i + per_chunk]
        rows = [m for _ in chunk for m in prompts]
        row_sources = [s for s in chunk for _ in prompts]
        responses = generate_responses(variant.model, variant.tokenizer, rows, gen, progress=False,
                                       row_kwargs=variant.mixture.row_sources(row_sources))
        for j, s in enumerate(chunk):
            done[s.spec()] = responses[j * len(prompts):(j + 1) * len(prompts)]
            if path is not None:
                append_jsonl(path, [{"source": s.spec(), "responses": done[s.spec()]}])
    variant.activate()
    return {s.spec(): done[s.spec()] for s in sources}


def generation_scorer(variant, prompts: Sequence, judges: dict, gen=None, *, cache: str | Path | None = None,
                      progress: bool = True) -> Scorer:
    """The Pareto scorer: each source answers every prompt (greedy; rows of several sources share a batch,
    one source per row, so the sweep runs as a few large batches), then each axis' judge scores every answer.

    Generations are checkpointed to `cache` (JSONL, one line per source) so a killed sweep resumes.
    """
    from axial.generate import GenerationConfig

    gen = gen or GenerationConfig()
    prompts = list(prompts)

    def score(sources: Sequence[Source]) -> list[dict[str, list[float]]]:
        done = generate_for_sources(variant, prompts, sources, gen, cache=cache, progress=progress)
        specs = [s.spec() for s in sources]
        all_prompts = [m for _ in specs for m in prompts]
        all_responses = [r for spec in specs for r in done[spec]]
        per_axis = {a: j.score(all_prompts, all_responses) for a, j in judges.items()}
        n = len(prompts)
        return [{a: list(v[i * n:(i + 1) * n]) for a, v in per_axis.items()} for i in range(len(specs))]

    return score


@dataclass
class AxisBench:
    """How one axis is scored in a sweep: an axial.evaluate bench, its held-out items (the same for every
    point), the per-item score it reports that the sweep uses (e.g. harmless: p_safe; alpaca: preference;
    truthfulqa_gen: bleu_acc or bleu_diff), and how many tokens each answer may have."""

    bench: str
    items: list[dict]
    metric: str
    max_new_tokens: int = 64


def bench_scorer(variant, axes: dict[str, AxisBench], eval_config, out: str | Path, *, batch_size: int = 16,
                 progress: bool = True) -> Scorer:
    """A Pareto scorer where every axis has its own held-out prompts and is scored by its own bench and judge
    (axial.evaluate.benches: the same scoring as `axial eval`), instead of every judge scoring answers to
    every axis' prompts. Generations go to OUT/generations_<axis>.jsonl and judged scores to
    OUT/scores_<axis>.jsonl (both resumable). Every axis must hold the same number of items (the sweep's
    paired bootstrap draws item i of every axis together)."""
    from axial.evaluate.benches import GenerativeBench, RunContext, get_bench
    from axial.evaluate.harness import _Judges
    from axial.generate import GenerationConfig

    out = Path(out)
    sizes = {a: len(ab.items) for a, ab in axes.items()}
    if len(set(sizes.values())) != 1:
        raise AxialError(f"bench_scorer: every axis needs the same number of items, got {sizes}")
    judges = _Judges(eval_config, out)
    ctx = RunContext(eval_config, out, judges, progress=progress)

    def score(sources: Sequence[Source]) -> list[dict[str, list[float]]]:
        results: list[dict[str, list[float]]] = [{} for _ in sources]
        for axis, ab in axes.items():
            bench = get_bench(ab.bench)
            gen = GenerationConfig(max_new_tokens=ab.max_new_tokens, batch_size=batch_size, seed=eval_config.seed)
            # Chat benches batch rows of several sources together; a bench with its own prompting (truthfulqa_gen)
            # generates through its own `generate`, exactly as `axial eval` does.
            own = None if type(bench).generate is GenerativeBench.generate else (
                lambda items, bench=bench, gen=gen: bench.generate(variant, list(items), gen))
            responses = generate_for_sources(variant, ab.items if own else [it["messages"] for it in ab.items],
                                             sources, gen, cache=out / f"generations_{axis}.jsonl",
                                             progress=progress, desc=f"{axis}: generate", generate=own)
            cache = out / f"scores_{axis}.jsonl"
            scored = {row["source"]: row["scores"] for row in read_jsonl_resumable(cache)
                      if len(row["scores"]) == len(ab.items)}
            for s in tqdm([s for s in dict.fromkeys(sources) if s.spec() not in scored], desc=f"{axis}: judge",
                          unit="source", disable=not progress):
                rows = []
                for start in range(0, len(ab.items), eval_config.judge_batch_size):
                    chunk = slice(start, start + eval_config.judge_batch_size)
                    rows += bench.score(ctx, ab.items[chunk], responses[s.spec()][chunk])
                scored[s.spec()] = [float(r[ab.metric]) for r in rows]
                append_jsonl(cache, [{"source": s.spec(), "scores": scored[s.spec()]}])
            for i, s in enumerate(sources):
                results[i][axis] = scored[s.spec()]
        return results

    score.judges = judges  # type: ignore[attr-defined]
    return score


def summarise(points: Sequence[Point], axes: Sequence[str], cfg: ParetoConfig) -> dict:
    n_items = {len(s) for p in points for s in p.scores.values()}
    if len(n_items) != 1:
        raise AxialError(f"pareto: points were scored on different numbers of items {sorted(n_items)}; every "
                         "point must score the same items")
    n = n_items.pop()
    arr = {p.label: np.array([p.scores[a] for a in axes]) for p in points}  # [A, n]
    hoe = [p.label for p in points if p.kind == "hoe"]
    lin = [p.label for p in points if p.kind == "linear"]
    every = [p.label for p in points]

    def stats(idx):
        means = {k: v[:, idx].mean(axis=1) for k, v in arr.items()}
        # Reference point: the worst mean on each axis over every point, so all fronts share one box.
        ref = np.min(np.stack([means[k] for k in every]), axis=0) - 1e-9
        hv_h = hypervolume(np.stack([means[k] for k in hoe]), ref)
        hv_l = hypervolume(np.stack([means[k] for k in lin]), ref) if lin else math.nan
        return hv_h, hv_l

    full = np.arange(n)
    hv_h, hv_l = stats(full)
    rng = np.random.default_rng(cfg.seed)
    # One set of resampled item indices for the hypervolumes and the per-preference differences (paired).
    draws = [rng.integers(0, n, n) for _ in range(cfg.bootstrap_resamples)]
    boots = np.array([stats(d) for d in draws])

    def ci(values):
        return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]

    result = {
        "axes": list(axes), "n_items": n,
        "statistics": f"percentile bootstrap over items (paired across points), {cfg.bootstrap_resamples} "
                      f"resamples, seed {cfg.seed}; hypervolume reference = per-axis minimum mean over all points",
        "points": [{"label": p.label, "kind": p.kind, "preference": p.preference,
                    "mean": dict(zip(axes, p.means(axes).tolist(), strict=True)),
                    "ci95": {a: ci(rng.choice(p.scores[a], (cfg.bootstrap_resamples, n)).mean(1)) for a in axes}}
                   for p in points],
        "hypervolume": {"hoe": {"estimate": hv_h, "ci95": ci(boots[:, 0])}},
    }
    if lin:
        pairs = [(h, h.replace("hoe ", "linear ", 1)) for h in hoe]
        dom = [dominates(arr[h].mean(1), arr[lbl].mean(1)) for h, lbl in pairs if lbl in arr]
        k = sum(dom)
        result["hypervolume"]["linear"] = {"estimate": hv_l, "ci95": ci(boots[:, 1])}
        result["hypervolume"]["hoe_minus_linear"] = {"estimate": hv_h - hv_l, "ci95": ci(boots[:, 0] - boots[:, 1])}
        result["hoe_dominates_linear"] = {"count": k, "n": len(dom), "fraction": k / len(dom),
                                          "ci95": list(wilson(k, len(dom)))}
        result["per_preference"] = [_paired_row(h, lbl, arr, axes, draws, ci) for h, lbl in pairs if lbl in arr]
        sig = sum(r["gain_without_loss"] for r in result["per_preference"])
        result["hoe_gains_without_loss"] = {"count": sig, "n": len(dom), "fraction": sig / len(dom),
                                            "ci95": list(wilson(sig, len(dom)))}
    return result


def _paired_row(hoe: str, linear: str, arr: dict, axes: Sequence[str], draws, ci) -> dict:
    """HoE minus linear interpolation at one preference, per axis, with a paired bootstrap CI over items.

    `dominates`: HoE's means are >= on every axis and > on one (what the headline count uses).
    `gain_without_loss`: the stricter reading, some axis' CI lies above 0 and none lies below 0.
    `identical`: both produced the same scores on every item (e.g. a vertex, where both are the one expert).
    """
    d = arr[hoe] - arr[linear]  # [A, n]
    boot = np.stack([d[:, idx].mean(axis=1) for idx in draws])  # [B, A]
    diff = {a: {"estimate": float(d[i].mean()), "ci95": ci(boot[:, i])} for i, a in enumerate(axes)}
    return {"hoe": hoe, "linear": linear, "diff": diff, "identical": bool(not d.any()),
            "dominates": dominates(arr[hoe].mean(1), arr[linear].mean(1)),
            "gain_without_loss": bool(any(v["ci95"][0] > 0 for v in diff.values())
                                      and not any(v["ci95"][1] < 0 for v in diff.values()))}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def write_pareto_report(report: dict, points: Sequence[Point], axes: Sequence[str], out: Path) -> None:
    import itertools

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    atomic_write_json(out / "pareto.json", report, default=str)
    hv = report["hypervolume"]
    lines = [f"# Pareto sweep over {', '.join(axes)} ({report['n_items']} held-out items per point)", "",
             report["statistics"], "", "| hypervolume | estimate | 95% CI |", "|---|---|---|"]
    lines += [f"| {k} | {v['estimate']:.4g} | [{v['ci95'][0]:.4g}, {v['ci95'][1]:.4g}] |" for k, v in hv.items()]
    if "hoe_dominates_linear" in report:
        d = report["hoe_dominates_linear"]
        lines += ["", f"HoE dominates linear interpolation at {d['count']} of {d['n']} preferences "
                      f"({d['fraction']:.0%}, Wilson 95% CI [{d['ci95'][0]:.0%}, {d['ci95'][1]:.0%}])."]
    if "per_preference" in report:
        g = report["hoe_gains_without_loss"]
        lines += [f"HoE is better on some axis (paired 95% CI above 0) and worse on none (no CI below 0) at "
                  f"{g['count']} of {g['n']} preferences.", "",
                  "| preference | " + " | ".join(f"HoE − linear: {a} [95% CI]" for a in axes)
                  + " | dominates | gain without loss |", "|---|" + "---|" * (len(axes) + 2)]
        for r in report["per_preference"]:
            cells = [f"{v['estimate']:+.3f} [{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}]" for v in r["diff"].values()]
            lines.append(f"| {r['hoe'].removeprefix('hoe ')} | " + " | ".join(cells) + " | "
                         + ("identical (same weights)" if r["identical"] else "yes" if r["dominates"] else "no")
                         + f" | {'yes' if r['gain_without_loss'] else 'no'} |")
    for axis, j in report.get("judges", {}).items():
        lines.append(f"- {axis}: judge {j.get('name')} ({j.get('kind')})"
                     + (" — WEAK JUDGE (the embedded model): indicative only" if j.get("weak") else ""))
    lines += ["", "| point | " + " | ".join(axes) + " |", "|---|" + "---|" * len(axes)]
    for p in report["points"]:
        cells = [f"{p['mean'][a]:.3f} [{p['ci95'][a][0]:.3f}, {p['ci95'][a][1]:.3f}]" for a in axes]
        lines.append(f"| {p['label']} | " + " | ".join(cells) + " |")
    atomic_write_text(out / "pareto.md", "\n".join(lines) + "\n")

    pairs = list(itertools.combinations(range(len(axes)), 2))
    fig = plt.figure(figsize=(5 * (len(pairs) + (len(axes) == 3)), 4.5))
    style = {"hoe": ("tab:red", "o"), "linear": ("tab:blue", "s"), "uniform": ("tab:green", "D"),
             "expert": ("tab:purple", "^"), "base": ("black", "x")}
    means = {p.label: p.means(axes) for p in points}
    cis = {p["label"]: p["ci95"] for p in report["points"]}
    for j, (a, b) in enumerate(pairs):
        ax = fig.add_subplot(1, len(pairs) + (len(axes) == 3), j + 1)
        for kind, (color, marker) in style.items():
            sel = [p for p in points if p.kind == kind]
            if not sel:
                continue
            xy = np.array([[means[p.label][a], means[p.label][b]] for p in sel])
            # 95% CI of each point's mean on both axes (bootstrap over items) as error bars.
            lo = np.array([[cis[p.label][axes[a]][0], cis[p.label][axes[b]][0]] for p in sel])
            hi = np.array([[cis[p.label][axes[a]][1], cis[p.label][axes[b]][1]] for p in sel])
            ax.errorbar(xy[:, 0], xy[:, 1], xerr=[xy[:, 0] - lo[:, 0], hi[:, 0] - xy[:, 0]],
                        yerr=[xy[:, 1] - lo[:, 1], hi[:, 1] - xy[:, 1]], fmt="none", ecolor=color, alpha=0.25,
                        lw=0.8)
            ax.scatter(xy[:, 0], xy[:, 1], c=color, marker=marker, label=kind, alpha=0.8)
            if kind in ("hoe", "linear") and len(xy) > 1:
                f = xy[front_mask(xy)]
                f = f[np.argsort(f[:, 0])]
                ax.plot(f[:, 0], f[:, 1], c=color, lw=1)
        ax.set_xlabel(f"{axes[a]} (mean, 95% CI)")
        ax.set_ylabel(f"{axes[b]} (mean, 95% CI)")
        if j == 0:
            ax.legend(fontsize=8)
    if len(axes) == 3:
        ax = fig.add_subplot(1, len(pairs) + 1, len(pairs) + 1, projection="3d")
        for kind, (color, marker) in style.items():
            sel = np.array([means[p.label] for p in points if p.kind == kind])
            if len(sel):
                ax.scatter(sel[:, 0], sel[:, 1], sel[:, 2], c=color, marker=marker, label=kind)
        ax.set_xlabel(axes[0])
        ax.set_ylabel(axes[1])
        ax.set_zlabel(axes[2])
    fig.suptitle(f"Pareto sweep; HV hoe {hv['hoe']['estimate']:.3g}"
                 + (f", linear {hv['linear']['estimate']:.3g}" if "linear" in hv else ""))
    fig.tight_layout()
    with atomic_output(out / "pareto.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def register(app: typer.Typer) -> None:
    @app.command("pareto")
    def pareto_cmd(
        experts: list[str] = typer.Option(..., "--experts", help=cliopts.EXPERTS_HELP + "; axis experts and any "
                                          "merged anchor experts"),
        prompts: list[str] = typer.Option(..., "--prompts", help="held-out prompt source (file or HF id; "
                                                                 "repeatable); only its test half is used"),
        judge: list[str] = typer.Option(None, "--judge", help=cliopts.JUDGE_HELP + "; one per axis"),
        judges_legacy: str | None = typer.Option(None, "--judges", hidden=True, help="deprecated: --judge"),
        out: str = typer.Option(..., help="output folder (resumes from points.jsonl / generations.jsonl)"),
        model: str = typer.Option("embedded", help=cliopts.MODEL_HELP),
        limit: int | None = typer.Option(None, help="at most N prompts per source (hash order, same for all)"),
        max_new_tokens: int = typer.Option(128),
        batch_size: int = typer.Option(8),
        dtype: str = typer.Option("auto", help=cliopts.DTYPE_HELP),
        device: str = typer.Option("auto", help=cliopts.DEVICE_HELP),
        axes: str | None = typer.Option(None, help="axes YAML/JSON file (default: the built-in axes)"),
        anchors: str | None = typer.Option(None, help="anchors JSON for the preference points (default: one "
                                                      "anchor per axis / merged expert)"),
        overrides: list[str] | None = typer.Argument(None, help="ParetoConfig key=value (points_per_edge=5 "
                                                                "baselines=linear,base ...)"),
    ):
        """Sweep preferences over the simplex, score each point per axis, write the fronts and hypervolumes."""
        from axial.axes import axis_names, load_axes
        from axial.data import load_records
        from axial.generate import GenerationConfig
        from axial.rewards import load_judge
        from axial.variants import VariantSpec, load_variant

        names = axis_names(load_axes(axes))
        specs = cliopts.judges(judge, judges_legacy)
        missing = [a for a in names if a not in specs]
        if missing:
            raise AxialError(f"--judge: give AXIS=SPEC for every axis {names} (missing: {missing})")
        messages = [r.messages for src in prompts for r in load_records(src, split="test", limit=limit).records]
        if not messages:
            raise AxialError(f"--prompts {prompts}: no held-out (test-split) prompts")
        cfg = ParetoConfig().with_overrides(overrides)
        variant = load_variant(VariantSpec(model=model, experts=cliopts.experts_list(experts), dtype=dtype,
                                           device=device))
        scorers = {a: load_judge(specs[a], axis=a) for a in names}
        gen = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=batch_size)
        score = generation_scorer(variant, messages, scorers, gen, cache=f"{out}/generations.jsonl")
        report = pareto(variant.mixture, names, score, cfg, anchors=anchors, out=out,
                        judges={a: j.describe() for a, j in scorers.items()})
        hv = report["hypervolume"]
        typer.echo(f"{len(messages)} prompts; hypervolume hoe {hv['hoe']['estimate']:.4g}"
                   + (f", linear {hv['linear']['estimate']:.4g}" if "linear" in hv else "") + f" -> {out}")
