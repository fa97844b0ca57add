"""`axial export`, `axial merge-experts`, `axial pareto`: the CLI faces of axial.preference."""

from __future__ import annotations

import typer


def _split(items: list[str]) -> list[str]:
    # Both `--experts a --experts b` and `--experts a,b` work.
    return [p for item in items for p in item.split(",") if p]


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        preference: str = typer.Option(..., help="e.g. helpful=0.7,harmless=0.3 (normalised to the simplex)"),
        out: str = typer.Option(..., help="output folder (must be new or empty)"),
        experts: list[str] = typer.Option(..., "--experts", help="expert adapter folder (repeat, or comma list)"),
        model: str = typer.Option("embedded", help="base model spec: embedded | HF id | folder | .gguf"),
        format: str = typer.Option("hf", help="hf: weights folded into the model | peft: one LoRA adapter"),
        axes: str | None = typer.Option(None, help="axes YAML/JSON file (default: the built-in axes)"),
        dtype: str = typer.Option("fp32", help="dtype the base is loaded and (for hf) saved in"),
    ):
        """Fold a fixed preference into an HF model folder (zero overhead) or one PEFT/vLLM LoRA adapter."""
        from axial.axes import load_axes
        from axial.preference import export
        from axial.variants import VariantSpec, load_variant

        variant = load_variant(VariantSpec(model=model, experts=_split(experts), source="base", dtype=dtype,
                                           device="cpu"))
        path = export(variant, preference, out, format=format, axes=load_axes(axes))
        typer.echo(f"exported {format} to {path}")

    @app.command("merge-experts")
    def merge_experts_cmd(
        preference: str = typer.Option(..., help="the anchor preference, e.g. helpful=0.5,harmless=0.5"),
        out: str = typer.Option(..., help="output adapter folder"),
        experts: list[str] = typer.Option(..., "--experts", help="axis expert adapter folders (repeat or comma list)"),
        axes: str | None = typer.Option(None, help="axes YAML/JSON file (default: the built-in axes)"),
        overrides: list[str] | None = typer.Argument(None, help="MergeConfig key=value (method=ties density=0.5 "
                                                                "rank=0 ...)"),
    ):
        """Merge axis experts' task vectors at an anchor preference (TIES/DARE) into one LoRA expert (SVD)."""
        from axial.axes import load_axes
        from axial.mixture import load_experts, save_expert
        from axial.preference import MergeConfig, merge_experts, parse_preference

        cfg = MergeConfig().with_overrides(overrides)
        expert = merge_experts(load_experts(_split(experts)), parse_preference(preference, load_axes(axes)), cfg)
        save_expert(expert, out)
        cfg.save(f"{out}/merge_config.json")
        typer.echo(f"merged expert '{expert.name}' (mean SVD relative error "
                   f"{expert.meta['mean_relative_error']:.3g}) -> {out}")

    @app.command("pareto")
    def pareto_cmd(
        experts: list[str] = typer.Option(..., "--experts", help="expert adapter folders: axis experts and any "
                                                                 "merged anchor experts (repeat or comma list)"),
        prompts: list[str] = typer.Option(..., "--prompts", help="held-out prompt source (file or HF id; "
                                                                 "repeatable); only its test half is used"),
        judges: str = typer.Option(..., help="AXIS=JUDGE_SPEC per axis, comma separated, e.g. "
                                             "helpful=rm:runs/rm_helpful,harmless=hf-cls:...,honest=embedded"),
        out: str = typer.Option(..., help="output folder (resumes from points.jsonl if present)"),
        model: str = typer.Option("embedded", help="base model spec"),
        limit: int | None = typer.Option(None, help="at most N prompts per source (hash order, same for all)"),
        max_new_tokens: int = typer.Option(128),
        batch_size: int = typer.Option(8),
        dtype: str = typer.Option("auto"),
        axes: str | None = typer.Option(None, help="axes YAML/JSON file (default: the built-in axes)"),
        anchors: str | None = typer.Option(None, help="anchors JSON (axial.preference.load_anchors; default: "
                                                      "one anchor per axis / merged expert)"),
        overrides: list[str] | None = typer.Argument(None, help="ParetoConfig key=value (points_per_edge=5 "
                                                                "baselines=linear,base ...)"),
    ):
        """Sweep preferences over the simplex, score each point per axis, write the fronts and hypervolumes."""
        from axial.axes import axis_names, load_axes
        from axial.data import load_records
        from axial.errors import AxialError
        from axial.generate import GenerationConfig, generate_responses
        from axial.preference import load_anchors
        from axial.preference.pareto import ParetoConfig, pareto
        from axial.rewards import load_judge
        from axial.variants import VariantSpec, load_variant

        names = axis_names(load_axes(axes))
        specs = dict(item.split("=", 1) for item in judges.split(",") if "=" in item)
        missing = [a for a in names if a not in specs]
        if missing or not all("=" in item for item in judges.split(",") if item):
            raise AxialError(f"--judges: give AXIS=SPEC for every axis {names} (missing: {missing})")
        messages = [r.messages for src in prompts for r in load_records(src, split="test", limit=limit).records]
        if not messages:
            raise AxialError(f"--prompts {prompts}: no held-out (test-split) prompts")
        cfg = ParetoConfig().with_overrides(overrides)
        variant = load_variant(VariantSpec(model=model, experts=_split(experts), dtype=dtype))
        scorers = {a: load_judge(specs[a], axis=a) for a in names}
        gen = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=batch_size)

        def evaluate_point():
            responses = generate_responses(variant.model, variant.tokenizer, messages, gen, progress=False)
            return {a: j.score(messages, responses) for a, j in scorers.items()}

        anchor_list = load_anchors(anchors, variant.mixture, names) if anchors else None
        report = pareto(variant.mixture, names, evaluate_point, cfg, anchors=anchor_list, out=out,
                        judges={a: j.describe() for a, j in scorers.items()})
        hv = report["hypervolume"]
        typer.echo(f"{len(messages)} prompts; hypervolume hoe {hv['hoe']['estimate']:.4g}"
                   + (f", linear {hv['linear']['estimate']:.4g}" if "linear" in hv else "") + f" -> {out}")
