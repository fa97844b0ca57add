"""`axial merge-experts`: the CLI face of axial.preference.merge_experts."""

from __future__ import annotations

import typer

from axial import cliopts


def register(app: typer.Typer) -> None:
    @app.command("merge-experts")
    def merge_experts_cmd(
        preference: str = typer.Option(..., help="the anchor preference, e.g. helpful=0.5,harmless=0.5"),
        out: str = typer.Option(..., help="output adapter folder"),
        experts: list[str] = typer.Option(..., "--experts", help=cliopts.EXPERTS_HELP),
        axes: str | None = typer.Option(None, help="axes YAML/JSON file (default: the built-in axes)"),
        overrides: list[str] | None = typer.Argument(None, help="MergeConfig key=value (method=ties density=0.5 "
                                                                "rank=0 ...)"),
    ):
        """Merge axis experts' task vectors at an anchor preference (TIES/DARE) into one LoRA expert (SVD)."""
        from axial.axes import load_axes
        from axial.mixture import load_experts, save_expert
        from axial.preference import MergeConfig, merge_experts, parse_preference

        cfg = MergeConfig().with_overrides(overrides)
        expert = merge_experts(load_experts(cliopts.experts_list(experts)), parse_preference(preference, load_axes(axes)), cfg)
        save_expert(expert, out)
        cfg.save(f"{out}/merge_config.json")
        typer.echo(f"merged expert '{expert.name}' (mean SVD relative error "
                   f"{expert.meta['mean_relative_error']:.3g}) -> {out}")
