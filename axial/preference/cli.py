"""`axial export` and `axial merge-experts`: the CLI faces of axial.preference.export / merge_experts."""

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
