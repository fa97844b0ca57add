"""The axis-collapse report: do the usual ways of getting ONE model for all axes keep each axis's gain?

For each training mode (with the AlignX axis injection, and without it) it trains, from one experts recipe:
  experts      one LoRA per axis (the recipe as is)
  sequential   one adapter trained axis after axis, each stage starting from the previous one
  mixed        one adapter on the union of all axes' data (each example keeps its own axis's injection)
and evaluates, on held-out data through axial.evaluate (the same items for every variant):
  base, expert:AXIS (each expert alone), uniform (the three experts merged at 1/K through the mixture
  layer), sequential, mixed.
Every expert is evaluated WITHOUT the injection in the prompt: the injection is a training-time device.

Outputs in OUT/: collapse_report.{json,md,png}; gain = variant - base on each axis's headline metric,
forgetting = variant - expert(axis) on that axis (negative: the variant lost part of the axis expert's gain),
both with paired-bootstrap 95% CIs from the harness; the evaluation itself in OUT/eval/ (per-item records).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axial.config import Config
from axial.errors import AxialError
from axial.experts.config import MIXED, ExpertConfig
from axial.experts.data import load_axis_records
from axial.experts.recipe import load_recipe
from axial.experts.train import train_expert
from axial.io import atomic_output, atomic_write_json, atomic_write_text

MODES = {"inject": True, "no_inject": False}
COMBINED = ("uniform", "sequential", "mixed")


@dataclass
class CollapseConfig(Config):
    recipe: str = "embedded_default"
    recipe_overrides: list[str] = field(default_factory=list)  # e.g. data_root=/data, max_steps=20
    out: str = "collapse"
    modes: list[str] = field(default_factory=lambda: list(MODES))
    # Benches to score (default: every recipe axis's benchmarks from axial.axes), their data, and judges.
    benches: list[str] = field(default_factory=list)
    eval_data: dict[str, str] = field(default_factory=dict)
    eval_limit: int | None = None
    eval_limits: dict[str, int] = field(default_factory=dict)  # per-bench override of eval_limit
    judges: dict[str, str] = field(default_factory=dict)
    judge_validation: dict[str, str] = field(default_factory=dict)  # axis -> `axial validate-judge --out` JSON
    max_new_tokens: int = 128
    eval_dtype: str = "auto"
    # Which single-model combinations to build: uniform needs no training; sequential and mixed train adapters.
    combined: list[str] = field(default_factory=lambda: list(COMBINED))
    # Reuse already trained injected experts (DIR/<axis>, e.g. from `axial train-experts`) instead of retraining.
    experts_dir: str | None = None

    def validate(self) -> None:
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise AxialError(f"CollapseConfig.modes: {self.modes}; choose from {list(MODES)}")
        bad = [c for c in self.combined if c not in COMBINED]
        if bad:
            raise AxialError(f"CollapseConfig.combined: unknown {bad}; choose from {list(COMBINED)}")
        if self.eval_limit is not None and self.eval_limit < 1:
            raise AxialError(f"CollapseConfig.eval_limit: must be >= 1, got {self.eval_limit}")


def _variant_name(mode: str, what: str) -> str:
    return f"{what}@{mode}"


def train_collapse_variants(config: CollapseConfig) -> dict[str, dict[str, Any]]:
    """Train (or resume / reuse) every adapter the report needs; returns mode -> {axis|method: folder}."""
    recipe = load_recipe(config.recipe, config.recipe_overrides)
    per_axis = recipe.expert_configs()
    out = Path(config.out)
    trained: dict[str, dict[str, Any]] = {}
    for mode in config.modes:
        inject = MODES[mode]
        folders: dict[str, Any] = {}
        for axis, cfg in per_axis.items():
            reuse = Path(config.experts_dir or "") / axis
            if inject and config.experts_dir:
                if not (reuse / "adapter_model.safetensors").exists():
                    raise AxialError(f"CollapseConfig.experts_dir: no trained expert at {reuse}")
                folders[axis] = reuse
            else:
                folders[axis] = train_expert(cfg.replace(out=str(out / mode / "experts" / axis), inject=inject))
        if "sequential" in config.combined:
            # Stage 1 is the first axis's expert itself (same config, same seed): reuse it, do not retrain it.
            first_axis = next(iter(per_axis))
            previous = folders[first_axis]
            for i, (axis, cfg) in enumerate(list(per_axis.items())[1:], start=1):
                previous = train_expert(cfg.replace(out=str(out / mode / "sequential" / f"{i + 1}-{axis}"),
                                                    inject=inject, init_adapter=str(previous)))
            folders["sequential"] = previous
        if "mixed" in config.combined:
            folders["mixed"] = _train_mixed(per_axis, out / mode / "mixed", inject)
        trained[mode] = folders
    return trained


def _train_mixed(per_axis: dict[str, ExpertConfig], out: Path, inject: bool) -> Path:
    methods = {c.method for c in per_axis.values()}
    if len(methods) > 1:
        raise AxialError(f"collapse report: the mixed adapter needs one method for all axes, recipe has {methods}")
    tagged = []
    for axis, cfg in per_axis.items():
        tagged += [(axis, r) for r in load_axis_records(cfg.data, method=cfg.method, split=cfg.split,
                                                        limit=cfg.limit, skip_invalid=cfg.skip_invalid)]
    first = next(iter(per_axis.values()))
    # Same hyper-parameters as the experts (first axis's, the recipe defaults), same epochs over 3x the data:
    # the mixed adapter gets as many steps as the experts together.
    cfg = first.replace(axis=MIXED, data=[d for c in per_axis.values() for d in c.data], out=str(out),
                        inject=inject, limit=None,
                        skip_invalid=any(c.skip_invalid for c in per_axis.values()))
    return train_expert(cfg, tagged)


def collapse_variants(config: CollapseConfig, trained: dict[str, dict[str, Any]], model: str,
                      axes: list[str]):
    from axial.variants import VariantSpec

    variants = [VariantSpec(model=model, source="base", name="base", dtype=config.eval_dtype)]
    for mode, folders in trained.items():
        experts = [str(folders[a]) for a in axes]
        for axis in axes:
            variants.append(VariantSpec(model=model, experts=experts, source=f"expert:{axis}",
                                        name=_variant_name(mode, f"expert-{axis}"), dtype=config.eval_dtype))
        if "uniform" in config.combined:
            variants.append(VariantSpec(model=model, experts=experts, source="uniform",
                                        name=_variant_name(mode, "uniform"), dtype=config.eval_dtype))
        for what in ("sequential", "mixed"):
            if what not in folders:
                continue
            folder = Path(folders[what])
            name = json.loads((folder / "axial_expert.json").read_text())["axis"]
            variants.append(VariantSpec(model=model, experts=[str(folder)], source=f"expert:{name}",
                                        name=_variant_name(mode, what), dtype=config.eval_dtype))
    return variants


def run_eval(variants, benches: list[str], config: CollapseConfig, out: Path) -> dict[str, Any]:
    """The one call into the evaluation harness (paired differences are against variants[0])."""
    from axial.evaluate import EvalConfig, evaluate

    eval_cfg = EvalConfig(benches=benches, data=dict(config.eval_data), split="test", limit=config.eval_limit,
                          limits=dict(config.eval_limits),
                          judges=dict(config.judges), judge_validation=dict(config.judge_validation),
                          max_new_tokens=config.max_new_tokens,
                          harmless_max_new_tokens=config.max_new_tokens)
    return evaluate(variants, benches, dict(config.eval_data), out, eval_cfg, progress=True)


def collapse_report(config: CollapseConfig) -> dict[str, Any]:
    """Train what is missing, evaluate every variant, write OUT/collapse_report.{json,md,png}."""
    from axial.axes import get_axis

    recipe = load_recipe(config.recipe, config.recipe_overrides)
    axes = list(recipe.axes)
    benches = config.benches or [b for a in axes for b in get_axis(a).benchmarks]
    missing = [b for b in benches if b not in config.eval_data and b.split("_")[0] not in config.eval_data]
    if missing:
        raise AxialError(f"CollapseConfig.eval_data: no data for bench(es) {missing}; pass e.g. "
                         f"eval_data='{{\"{missing[0]}\": \"/path/to/file\"}}'")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "collapse_config.json")
    trained = train_collapse_variants(config)
    variants = collapse_variants(config, trained, recipe.model, axes)
    eval_dir = out / "eval"
    report = run_eval(variants, benches, config, eval_dir)
    shutil.copy(eval_dir / "report.json", out / "eval_vs_base.json")
    # Forgetting: the same stored items, paired against each axis's own expert (no generation is redone).
    vs_expert: dict[str, dict[str, Any]] = {}
    for mode in trained:
        for axis in axes:
            own = [b for b in benches if report["benches"][b]["axis"] == axis]
            if not own:
                continue
            first = next(v for v in variants if v.label == _variant_name(mode, f"expert-{axis}"))
            rest = [v for v in variants if v.label in {_variant_name(mode, w) for w in COMBINED}]
            vs_expert[f"{mode}:{axis}"] = run_eval([first, *rest], own, config, eval_dir)
    shutil.copy(eval_dir / "eval_config.json", out / "eval_config.json")
    summary = summarise(report, vs_expert, list(trained), axes)
    summary["adapters"] = {m: {k: str(v) for k, v in f.items()} for m, f in trained.items()}
    atomic_write_text(out / "collapse_report.md", render_markdown(summary))
    atomic_write_json(out / "collapse_report.json", summary)
    plot_collapse(summary, out / "collapse_report.png")
    return summary


def _headline(report: dict[str, Any], bench: str) -> str:
    return report["benches"][bench]["headline"][0]


def summarise(report: dict[str, Any], vs_expert: dict[str, dict], modes: list[str],
              axes: list[str]) -> dict[str, Any]:
    """Per variant and axis: score, gain vs base, and (for combined variants) difference vs the axis expert."""
    rows: dict[str, dict[str, Any]] = {}
    for variant, by_bench in report["results"].items():
        rows[variant] = {}
        for bench, metrics in by_bench.items():
            metric = _headline(report, bench)
            if metric not in metrics:
                continue
            cell = {"bench": bench, "metric": metric, "axis": report["benches"][bench]["axis"],
                    "score": metrics[metric]}
            diff = report["differences_vs_first"].get(variant, {}).get(bench, {}).get(metric)
            if diff:
                cell["gain_vs_base"] = diff
            rows[variant][bench] = cell
    for rep in vs_expert.values():
        for variant, by_bench in rep["differences_vs_first"].items():
            for bench, diffs in by_bench.items():
                metric = _headline(rep, bench)
                if metric in diffs and bench in rows.get(variant, {}):
                    rows[variant][bench]["vs_axis_expert"] = diffs[metric]
    return {"axes": axes, "modes": modes, "benches": {b: {"axis": v["axis"], "metric": v["headline"][0],
                                                          "n": v.get("n")} for b, v in report["benches"].items()},
            "rows": rows, "statistics": report["statistics"],
            "note": "experts evaluated without the injection prompt; gain = variant - base, vs_axis_expert = "
                    "variant - that axis's expert (same training mode), paired on the same items"}


def _fmt(m: dict[str, Any] | None, signed: bool = False) -> str:
    if not m or m.get("value") is None:
        return "–"
    lo, hi = m["ci95"]
    sign = "+" if signed else ""
    return f"{m['value']:{sign}.3f} [{lo:{sign}.3f}, {hi:{sign}.3f}]"


def render_markdown(summary: dict[str, Any]) -> str:
    benches = list(summary["benches"])
    head = " | ".join(f"{b} ({summary['benches'][b]['axis']}, {summary['benches'][b]['metric']}, "
                      f"n={summary['benches'][b]['n']})" for b in benches)
    lines = ["# Axis-collapse report", "", summary["note"] + ".", "",
             "## Score, and gain vs base (95% CI)", "", f"| variant | {head} |",
             "|---|" + "---|" * len(benches)]
    for variant, cells in summary["rows"].items():
        vals = []
        for b in benches:
            c = cells.get(b, {})
            gain = f"<br>Δ {_fmt(c.get('gain_vs_base'), True)}" if c.get("gain_vs_base") else ""
            vals.append(_fmt(c.get("score")) + gain)
        lines.append(f"| {variant} | " + " | ".join(vals) + " |")
    lines += ["", "## Cross-axis forgetting: combined variant - that axis's own expert (95% CI; < 0 = forgot)",
              "", f"| variant | {' | '.join(benches)} |", "|---|" + "---|" * len(benches)]
    for variant, cells in summary["rows"].items():
        if not any("vs_axis_expert" in c for c in cells.values()):
            continue
        lines.append(f"| {variant} | " + " | ".join(_fmt(cells.get(b, {}).get("vs_axis_expert"), True)
                                                    for b in benches) + " |")
    lines += ["", summary["statistics"], ""]
    return "\n".join(lines)


def plot_collapse(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    benches = list(summary["benches"])
    variants = [v for v in summary["rows"] if v != "base"]
    fig, ax = plt.subplots(figsize=(max(7, 0.6 * len(variants) * len(benches)), 4.5))
    width = 0.8 / max(1, len(variants))
    for i, variant in enumerate(variants):
        vals, errs = [], [[], []]
        for b in benches:
            g = summary["rows"][variant].get(b, {}).get("gain_vs_base") or {}
            v = g.get("value")
            lo, hi = g.get("ci95", [None, None])
            vals.append(v if v is not None else np.nan)
            errs[0].append(v - lo if v is not None and lo is not None else 0)
            errs[1].append(hi - v if v is not None and hi is not None else 0)
        ax.bar(np.arange(len(benches)) + i * width, vals, width, yerr=errs, capsize=2, label=variant)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(benches)) + width * (len(variants) - 1) / 2)
    ax.set_xticklabels([f"{b}\n({summary['benches'][b]['axis']})" for b in benches])
    ax.set_ylabel("gain vs base (headline metric, 95% CI)")
    ax.set_title("Axis collapse: gain vs base per axis")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
