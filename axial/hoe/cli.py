"""`axial train-hoe`: the CLI face of axial.hoe.train_hoe."""

from __future__ import annotations

import typer

from axial import cliopts


def register(app: typer.Typer) -> None:
    @app.command("train-hoe")
    def train_hoe_cmd(
        experts: list[str] = typer.Option(..., "--experts", help=cliopts.EXPERTS_HELP + "; axis experts and any "
                                                                  "merged experts (`axial merge-experts`)"),
        data: list[str] = typer.Option(..., "--data", help="preference pairs per axis: AXIS=FILE (HH-RLHF, "
                                                           "TruthfulQA, AlpacaEval annotations, ...) or builtin:AXIS; "
                                                           "repeatable; only the train half is read"),
        out: str = typer.Option(..., help="output folder (the HoE set)"),
        model: str = typer.Option("embedded", help=cliopts.MODEL_HELP),
        anchors: list[str] | None = typer.Option(None, "--anchor", help="anchor preference of a router expert, "
                                                 "e.g. helpful=0.5,harmless=0.5 (repeatable; default: the edge "
                                                 "midpoints and the centre)"),
        overrides: list[str] | None = typer.Argument(None, help="HoEConfig key=value (n_nearest=2 steps=100 "
                                                                "granularity=token ...)"),
    ):
        """Train HoE's router experts (one per anchor, over its nearest experts, Tchebycheff over per-axis
        preference losses) and write the set `hoe:AXIS=W,...?set=OUT` routes with."""
        from axial.hoe import HoEConfig, train_hoe

        cfg = HoEConfig(experts=cliopts.experts_list(experts), data=list(data), out=out, model=model,
                        anchors=list(anchors or [])).with_overrides(overrides)
        path = train_hoe(cfg)
        typer.echo(f"HoE set -> {path} (use the source hoe:AXIS=W,...?set={path})")
