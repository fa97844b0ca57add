"""`axial train-expert`, `axial train-experts` and `axial collapse-report` (same names as the Python API)."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    @app.command("train-expert")
    def train_expert_cmd(
        axis: str = typer.Option(..., help="axis name (axial.axes), e.g. helpful"),
        data: list[str] = typer.Option(..., "--data", help="data source (file, HF id, builtin:AXIS); repeatable"),
        out: str = typer.Option(..., help="output folder (adapter + axial_expert.json + log)"),
        method: str = typer.Option("sft", help="sft | dpo"),
        no_inject: bool = typer.Option(False, "--no-inject", help="train without the axis injection (ablation)"),
        model: str = typer.Option("embedded", help="base model spec"),
        split: str = typer.Option("train", help="train | all (test is the evaluation half)"),
        limit: int | None = typer.Option(None, help="at most N records per source"),
        overrides: list[str] | None = typer.Argument(None, help="ExpertConfig key=value overrides"),
    ):
        """Train one LoRA axis expert (resumes from its last checkpoint when rerun with the same command)."""
        from axial.experts.config import ExpertConfig
        from axial.experts.train import train_expert

        cfg = ExpertConfig(axis=axis, data=list(data), out=out, method=method, inject=not no_inject,
                           model=model, split=split, limit=limit).with_overrides(overrides)
        path = train_expert(cfg)
        console.print(f"expert '{axis}' -> {path}")

    @app.command("train-experts")
    def train_experts_cmd(
        recipe: str = typer.Argument(..., help="recipe YAML (or a built-in name: embedded_default)"),
        overrides: list[str] | None = typer.Argument(None, help="variables (data_root=...), shared or AXIS.field "
                                                                "overrides"),
        axes: str | None = typer.Option(None, help="comma list: train only these axes of the recipe"),
    ):
        """Train every axis expert of a recipe (finished ones are skipped, interrupted ones resume)."""
        from axial.experts.recipe import train_experts

        done = train_experts(recipe, overrides, axes=[a for a in (axes or "").split(",") if a] or None)
        for axis, path in done.items():
            console.print(f"expert '{axis}' -> {path}")

    @app.command("collapse-report")
    def collapse_report_cmd(
        recipe: str = typer.Option("embedded_default", help="experts recipe (YAML path or built-in name)"),
        out: str = typer.Option("collapse", help="output folder"),
        data: list[str] | None = typer.Option(None, "--data", help="bench=SOURCE evaluation data; repeatable"),
        bench: str | None = typer.Option(None, help="comma list of benches (default: the axes' benchmarks)"),
        limit: int | None = typer.Option(None, help="evaluate a deterministic subset of N items per bench"),
        limit_for: list[str] | None = typer.Option(None, "--limit-for", help="bench=N: per-bench limit; repeatable"),
        judge: list[str] | None = typer.Option(None, "--judge", help="axis=JUDGE_SPEC; repeatable"),
        judge_validation: list[str] | None = typer.Option(
            None, "--judge-validation", help="axis=FILE: that judge's `axial validate-judge --out` JSON, reused "
                                             "instead of validating again; repeatable"),
        modes: str = typer.Option("inject,no_inject", help="training modes: inject, no_inject"),
        experts_dir: str | None = typer.Option(None, help="reuse trained injected experts DIR/<axis>"),
        combined: str = typer.Option("uniform,sequential,mixed", help="single-model combinations to build"),
        max_new_tokens: int = typer.Option(128),
        train_only: bool = typer.Option(False, "--train-only", help="only train the adapters (e.g. one process per "
                                        "--modes value in parallel), then rerun without it to evaluate"),
        overrides: list[str] | None = typer.Argument(None, help="recipe overrides (data_root=..., max_steps=...)"),
    ):
        """Evaluate base, experts, sequential, mixed-data and uniform-merge adapters: per-axis gain and forgetting."""
        from axial.errors import AxialError
        from axial.experts.collapse import CollapseConfig, collapse_report, train_collapse_variants

        def pairs(values, flag):
            result = {}
            for v in values or []:
                key, eq, val = v.partition("=")
                if not eq or not key or not val:
                    raise AxialError(f"{flag} '{v}': expected KEY=VALUE")
                result[key] = val
            return result

        limits = pairs(limit_for, "--limit-for")
        bad = [f"{k}={v}" for k, v in limits.items() if not v.isdigit()]
        if bad:
            raise AxialError(f"--limit-for {bad[0]}: N must be a whole number")
        cfg = CollapseConfig(recipe=recipe, recipe_overrides=list(overrides or []), out=out,
                             modes=[m for m in modes.split(",") if m], eval_data=pairs(data, "--data"),
                             benches=[b for b in (bench or "").split(",") if b], eval_limit=limit,
                             eval_limits={k: int(v) for k, v in limits.items()},
                             judges=pairs(judge, "--judge"),
                             judge_validation=pairs(judge_validation, "--judge-validation"), experts_dir=experts_dir,
                             combined=[c for c in combined.split(",") if c],
                             max_new_tokens=max_new_tokens)
        if train_only:
            for mode, folders in train_collapse_variants(cfg).items():
                console.print(f"{mode}: " + ", ".join(f"{k} -> {v}" for k, v in folders.items()))
            return
        collapse_report(cfg)
        console.print(f"collapse report -> {out}/collapse_report.md")
