"""Step 5 (report): held-out per-axis reward of the base model, the MORA adapter and the no-rewrite ablation.

Every variant answers the same held-out prompts (never a training prompt: the pools are disjoint by
construction) greedily, and every answer is scored on every axis by the experiment's judges. Differences are
paired (same prompts) with bootstrap 95% CIs:  MORA - base, ablation - base, and MORA - ablation, the one the
paper's claim rests on. Outputs: mora_report.json, mora_report.md, mora_report.png, and per-variant
generations_<variant>.jsonl (reused when complete, so a killed report resumes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from axial.generate import GenerationConfig
from axial.io import atomic_output, atomic_write_json, atomic_write_lines, atomic_write_text
from axial.mora.prompts import Prompt
from axial.stats import bootstrap_ci, paired_bootstrap_diff

VARIANTS = ("base", "original", "rewritten")
LABELS = {"base": "base model", "original": "aligned WITHOUT rewriting (ablation)",
          "rewritten": "aligned WITH rewriting (MORA)"}
COMPARISONS = (("base", "rewritten"), ("base", "original"), ("original", "rewritten"))


def load_generator(config, adapter: Path | None, base=None):
    """A generate(prompts, cfg) function for the base model, or the base with one adapter, loaded as a variant
    (axial.variants) exactly as `axial eval` / `serve` / `chat` load them. `base=(model, tok)` is reused."""
    from axial.variants import VariantSpec, load_variant

    # One expert at weight 1 (`uniform` over a single expert) is the adapter applied as trained.
    spec = VariantSpec(model=config.model, dtype=config.dtype, experts=[str(adapter)] if adapter else [],
                       source="uniform" if adapter else "base")
    variant = load_variant(spec, base=base)

    def generate(prompts, cfg: GenerationConfig) -> list[str]:
        return variant.generate(prompts, cfg, progress=False)

    return generate


def variant_scores(config, variant: str, prompts: Sequence[Prompt], generate, judges: Mapping,
                   path: Path) -> list[dict]:
    """[{"id", "response", "scores"}] for every held-out prompt, from `path` when it is already complete."""
    ids = [p.id for p in prompts]
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if [r["id"] for r in rows] == ids:
            return rows
    cfg = GenerationConfig(max_new_tokens=config.gen_max_new_tokens(), do_sample=False,
                           batch_size=config.batch_size, seed=config.seed)
    messages = [p.messages for p in prompts]
    responses = generate()(messages, cfg)
    scores = {a: judge.score(messages, responses) for a, judge in judges.items()}
    rows = [{"id": p.id, "axis": p.axis, "variant": variant, "response": r,
             "scores": {a: float(scores[a][i]) for a in judges}} for i, (p, r) in enumerate(zip(prompts, responses,
                                                                                                    strict=True))]
    atomic_write_lines(path, [json.dumps(r, ensure_ascii=False) for r in rows])
    return rows


def report(config, heldout: Sequence[Prompt], adapters: Mapping[str, Path], out_dir: str | Path, *,
           generate_for: Callable[[str, Path | None], Callable] | None = None, judges: Mapping | None = None) -> dict:
    from axial.mora.sample import load_judges

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    judges = judges if judges is not None else load_judges(config)
    axes = list(judges)
    scored = {}
    shared: list = []  # the base model, loaded once for every variant that needs generating

    def base_model():
        if not shared:
            from axial.models import load_model

            shared.append(load_model(config.model, dtype=config.dtype))
        return shared[0]

    for variant in VARIANTS:
        adapter = adapters.get(variant)

        def gen(variant=variant, adapter=adapter):
            return generate_for(variant, adapter) if generate_for else load_generator(config, adapter, base_model())

        scored[variant] = variant_scores(config, variant, heldout, gen, judges,
                                         out_dir / f"generations_{variant}.jsonl")
    matrix = {v: {a: np.array([r["scores"][a] for r in rows]) for a in axes} for v, rows in scored.items()}
    for v in matrix:
        # The combined reward: mean over axes of each axis's score, standardised with the BASE model's
        # held-out mean/std on that axis, so one axis's judge scale does not dominate.
        matrix[v]["combined"] = np.mean([(matrix[v][a] - matrix["base"][a].mean()) / (matrix["base"][a].std() or 1)
                                         for a in axes], axis=0)
    metrics = axes + ["combined"]
    by_source = sorted({p.axis for p in heldout})
    result = {
        "n_heldout": len(heldout), "heldout_by_source_axis": {s: sum(p.axis == s for p in heldout) for s in by_source},
        "judges": {a: j.describe() for a, j in judges.items()},
        "weak_judge": any(getattr(j, "weak", False) for j in judges.values()),
        "mode": config.mode, "method": config.method, "model": config.model,
        "generation": {"greedy": True, "max_new_tokens": config.gen_max_new_tokens()},
        "adapters": {k: str(v) for k, v in adapters.items()},
        "variants": {v: {m: bootstrap_ci(matrix[v][m], resamples=config.resamples, seed=config.seed) for m in metrics}
                     for v in VARIANTS},
        "paired_differences": {f"{b} - {a}": {m: paired_bootstrap_diff(matrix[a][m], matrix[b][m],
                                                                       resamples=config.resamples, seed=config.seed)
                                             for m in metrics} for a, b in COMPARISONS},
        "by_source_axis": {s: {f"{b} - {a}": {m: paired_bootstrap_diff(
            matrix[a][m][[p.axis == s for p in heldout]], matrix[b][m][[p.axis == s for p in heldout]],
            resamples=config.resamples, seed=config.seed) for m in metrics} for a, b in COMPARISONS}
            for s in by_source},
        "pipeline": _pipeline_facts(config),
    }
    plot(result, metrics, out_dir / "mora_report.png")
    atomic_write_text(out_dir / "mora_report.md", markdown(result, metrics))
    atomic_write_json(out_dir / "mora_report.json", result, default=str)
    return result


def _pipeline_facts(config) -> dict:
    """What isolate / rewrite / align found, copied in so the report stands alone."""
    facts = {}
    files = {"isolate": config.folder / "isolate_summary.json", "rewrite": config.folder / "rewrite_summary.json"}
    for name, path in files.items():
        if path.exists():
            facts[name] = json.loads(path.read_text())
    for arm in ("rewritten", "original"):
        path = config.folder / "align" / arm / f"{config.mode}_{config.method}" / "final" / "mora_align.json"
        if path.exists():
            facts[f"align_{arm}"] = json.loads(path.read_text())
    return facts


def _fmt(stat: Mapping) -> str:
    if stat["value"] is None:
        return "n/a"
    lo, hi = stat["ci95"]
    return f"{stat['value']:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def markdown(result: Mapping, metrics: Sequence[str]) -> str:
    lines = ["# MORA report: held-out reward, with vs without rewriting", ""]
    if result["weak_judge"]:
        lines += ["**WEAK JUDGE**: at least one axis is scored by the embedded model used as a judge; treat the "
                  "numbers as a pipeline check, not as evidence about alignment quality.", ""]
    lines += [f"- held-out prompts: n = {result['n_heldout']} {result['heldout_by_source_axis']} (disjoint from "
              "every training prompt)",
              f"- model: {result['model']}; alignment: {result['mode']} {result['method']}; greedy answers, "
              f"max_new_tokens = {result['generation']['max_new_tokens']}",
              "- judges: " + "; ".join(f"{a}: {j['name']} ({j['kind']})" for a, j in result["judges"].items()),
              "- combined = mean over axes of scores standardised by the base model's held-out mean and std", "",
              "## Mean score per variant (95% bootstrap CI)", "",
              "| variant | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for v, stats in result["variants"].items():
        lines.append(f"| {LABELS[v]} | " + " | ".join(_fmt(stats[m]) for m in metrics) + " |")
    lines += ["", "## Paired differences on the same prompts (95% paired bootstrap CI)", "",
              "| comparison | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, stats in result["paired_differences"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(stats[m]) for m in metrics) + " |")
    lines += ["", "### MORA - ablation by the axis the held-out prompt was drawn for", "",
              "| prompts from | n | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
    for source, comps in result["by_source_axis"].items():
        stats = comps["rewritten - original"]
        lines.append(f"| {source} | {stats[metrics[0]]['n']} | " + " | ".join(_fmt(stats[m]) for m in metrics) + " |")
    facts = result["pipeline"]
    if "isolate" in facts:
        iso = facts["isolate"]
        lines += ["", "## Pipeline", "", f"- isolate: {iso['n_prompts']} training prompts, k = {iso['k']}, "
                  f"thresholds {iso['threshold_mode']} hi={iso['hi']} lo={iso['lo']}: {iso['counts']}"]
    if "rewrite" in facts:
        rw = facts["rewrite"]
        base = rw.get("similarity_unrelated_baseline") or {}
        lines.append(f"- rewrite: kept {rw['n_kept']} of {rw['n_single_reward_prompts']} single-reward prompts "
                     f"({rw['n_candidates']} candidates); rejections {rw['rejections_by_reason']}; candidate "
                     f"similarity median {_num(rw['similarity_of_candidates'].get('median'))}, unrelated-prompt "
                     f"baseline {_num(base.get('value'))} (threshold {rw['similarity_threshold']})")
    for arm in ("rewritten", "original"):
        if f"align_{arm}" in facts:
            a = facts[f"align_{arm}"]
            lines.append(f"- align {arm}: {a['n_rewritten_prompts']} rewritten prompts; stages "
                         + ", ".join(f"{s['name']} ({s['records']} records)" for s in a["stages"]))
    return "\n".join(lines) + "\n"


def plot(result: Mapping, metrics: Sequence[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / len(VARIANTS)
    for i, v in enumerate(VARIANTS):
        stats = [result["variants"][v][m] for m in metrics[:-1]]
        x = np.arange(len(stats)) + i * width
        vals = [s["value"] for s in stats]
        err = [[s["value"] - s["ci95"][0] for s in stats], [s["ci95"][1] - s["value"] for s in stats]]
        left.bar(x, vals, width, yerr=err, capsize=3, label=LABELS[v])
    left.set_xticks(np.arange(len(metrics) - 1) + width, metrics[:-1])
    left.set_ylabel("mean judge score (held-out)")
    left.set_ylim(top=left.get_ylim()[1] * 1.3)  # room for the legend above the bars
    left.legend(fontsize=8, loc="upper right")
    left.set_title(f"per-axis reward, n={result['n_heldout']}" + (" (WEAK JUDGE)" if result["weak_judge"] else ""))
    comps = list(result["paired_differences"])
    for i, name in enumerate(comps):
        stats = [result["paired_differences"][name][m] for m in metrics]
        x = np.arange(len(stats)) + i * width
        vals = [s["value"] for s in stats]
        err = [[s["value"] - s["ci95"][0] for s in stats], [s["ci95"][1] - s["value"] for s in stats]]
        right.bar(x, vals, width, yerr=err, capsize=3, label=name)
    right.axhline(0, color="k", lw=0.7)
    right.set_xticks(np.arange(len(metrics)) + width, metrics)
    right.set_ylabel("paired difference (95% CI)")
    right.legend(fontsize=8)
    right.set_title("differences on the same prompts")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
