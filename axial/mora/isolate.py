"""Step 2 (isolate): each prompt's reachable reward envelope and its class (single-reward / multi-reward / neither).

The envelope of a prompt is, per axis, the best score over its k rollouts (what the prompt lets the model
reach) and the spread (best - worst, how much sampling moves it). MORA's observation is that some prompts
cap the multi-axis reward: only one axis can score well whatever is sampled. Those are the rewrite targets.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from axial.errors import AxialError
from axial.io import atomic_output, atomic_write_json, atomic_write_lines

CLASSES = ("single", "multi", "neither")


def envelope(row: Mapping, axes: Sequence[str]) -> dict:
    """{"best": {axis: max}, "spread": {axis: max - min}} over a prompt's rollouts."""
    rollouts = row["rollouts"]
    if not rollouts:
        raise AxialError(f"prompt {row.get('id')!r}: no rollouts")
    best, spread = {}, {}
    for axis in axes:
        try:
            values = [float(r["scores"][axis]) for r in rollouts]
        except KeyError as e:
            raise AxialError(f"prompt {row.get('id')!r}: a rollout has no score for axis '{axis}' (sampled with "
                             "other axes/judges?)") from e
        best[axis] = max(values)
        spread[axis] = max(values) - min(values)
    return {"best": best, "spread": spread}


def envelope_value(best: Mapping[str, float], kind: str) -> float:
    """The multi-axis envelope a rewrite must raise: mean (mean_best) or min (min_best) of the per-axis bests."""
    values = list(best.values())
    return float(np.mean(values)) if kind == "mean_best" else float(min(values))


def thresholds(config, bests: Sequence[Mapping[str, float]], axes: Sequence[str]) -> dict:
    """Per-axis {"hi", "lo"} score cut-offs: the config's values, or those quantiles of each axis's bests."""
    if config.threshold_mode == "absolute":
        return {a: {"hi": config.hi, "lo": config.lo} for a in axes}
    if not bests:
        raise AxialError("isolate: quantile thresholds need at least one sampled prompt")
    out = {}
    for a in axes:
        values = np.array([b[a] for b in bests])
        out[a] = {"hi": float(np.quantile(values, config.hi)), "lo": float(np.quantile(values, config.lo))}
    return out


def classify(best: Mapping[str, float], cuts: Mapping[str, Mapping[str, float]]) -> tuple[str, str | None]:
    """(class, the one good axis for single-reward prompts).

    single: best >= hi on exactly one axis and < lo on every other; multi: >= hi on two or more; else neither.
    """
    high = [a for a, v in best.items() if v >= cuts[a]["hi"]]
    if len(high) >= 2:
        return "multi", None
    if len(high) == 1 and all(best[a] < cuts[a]["lo"] for a in best if a != high[0]):
        return "single", high[0]
    return "neither", None


def isolate(config, rows: Sequence[Mapping], out_dir: str | Path | None = None) -> dict:
    """Classify every sampled prompt; writes isolate.jsonl, isolate_summary.json and isolate_scatter.png."""
    axes = config.axis_names()
    envs = [envelope(r, axes) for r in rows]
    cuts = thresholds(config, [e["best"] for e in envs], axes)
    per_prompt = []
    for row, env in zip(rows, envs, strict=True):
        label, good = classify(env["best"], cuts)
        per_prompt.append({"id": row["id"], "axis": row["axis"], "class": label, "good_axis": good,
                           "best": env["best"], "spread": env["spread"],
                           "envelope": envelope_value(env["best"], config.envelope)})
    counts = Counter(p["class"] for p in per_prompt)
    by_source = {}
    for axis in sorted({p["axis"] for p in per_prompt}):
        c = Counter(p["class"] for p in per_prompt if p["axis"] == axis)
        by_source[axis] = {k: c.get(k, 0) for k in CLASSES}
    summary = {
        "n_prompts": len(per_prompt), "k": config.k, "threshold_mode": config.threshold_mode,
        "hi": config.hi, "lo": config.lo, "thresholds": cuts, "envelope": config.envelope,
        "counts": {k: counts.get(k, 0) for k in CLASSES}, "counts_by_source_axis": by_source,
        "single_by_good_axis": dict(Counter(p["good_axis"] for p in per_prompt if p["class"] == "single")),
        "mean_best": {a: float(np.mean([p["best"][a] for p in per_prompt])) for a in axes} if per_prompt else {},
        "mean_spread": {a: float(np.mean([p["spread"][a] for p in per_prompt])) for a in axes} if per_prompt else {},
    }
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_lines(out_dir / "isolate.jsonl", [json.dumps(p) for p in per_prompt])
        atomic_write_json(out_dir / "isolate_summary.json", summary)
        if len(axes) >= 2 and per_prompt:
            plot_reward_space(per_prompt, axes, cuts, out_dir / "isolate_scatter.png")
    return {"summary": summary, "prompts": per_prompt}


def plot_reward_space(per_prompt: Sequence[Mapping], axes: Sequence[str], cuts: Mapping, path: Path) -> None:
    """One scatter per pair of axes: each prompt at its best score on both, coloured by class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [(a, b) for i, a in enumerate(axes) for b in axes[i + 1:]]
    cols = min(3, len(pairs))
    rows = (len(pairs) + cols - 1) // cols
    fig, grid = plt.subplots(rows, cols, figsize=(4.2 * cols, 4 * rows), squeeze=False)
    colours = {"single": "tab:red", "multi": "tab:green", "neither": "tab:gray"}
    for ax, (a, b) in zip(grid.flat, pairs, strict=False):
        for label in CLASSES:
            pts = [p for p in per_prompt if p["class"] == label]
            ax.scatter([p["best"][a] for p in pts], [p["best"][b] for p in pts], s=14, alpha=0.7,
                       c=colours[label], label=f"{label} ({len(pts)})")
        ax.axvline(cuts[a]["hi"], color="k", lw=0.6, ls="--")
        ax.axhline(cuts[b]["hi"], color="k", lw=0.6, ls="--")
        ax.axvline(cuts[a]["lo"], color="k", lw=0.6, ls=":")
        ax.axhline(cuts[b]["lo"], color="k", lw=0.6, ls=":")
        ax.set_xlabel(f"best {a} score")
        ax.set_ylabel(f"best {b} score")
    for ax in list(grid.flat)[len(pairs):]:
        ax.axis("off")
    grid.flat[0].legend(fontsize=8)
    fig.suptitle(f"Reachable reward per prompt (best of k rollouts), n={len(per_prompt)}; dashed = hi, dotted = lo")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
