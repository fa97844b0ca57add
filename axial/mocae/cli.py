"""`axial train-router` and `axial calibrate`: the CLI faces of axial.mocae.train_router / calibrate."""

from __future__ import annotations

import typer

from axial import cliopts


def register(app: typer.Typer) -> None:
    @app.command("train-router")
    def train_router_cmd(
        experts: list[str] = typer.Option(..., "--experts", help="expert adapter folder (repeat, or comma list); "
                                                                  "the router's outputs follow this order"),
        data: list[str] = typer.Option(..., "--data", help="routing data: builtin:AXIS, a file whose records carry "
                                                           "their axis, or AXIS=FILE; repeatable"),
        out: str = typer.Option(..., help="output folder for the router"),
        model: str = typer.Option("embedded", help="base model spec"),
        overrides: list[str] | None = typer.Argument(None, help="RouterConfig key=value (scope=shared "
                                                                "granularity=token top_k=1 importance=task_vector "
                                                                "lm_steps=20 ...)"),
    ):
        """Train a MoCaE router over frozen experts (base frozen); ablations are key=value overrides."""
        from axial.mocae.train import RouterConfig, train_router

        cfg = RouterConfig(experts=cliopts.experts_list(experts), data=list(data), out=out, model=model).with_overrides(overrides)
        path = train_router(cfg)
        typer.echo(f"router -> {path}")

    @app.command("calibrate")
    def calibrate_cmd(
        router: str = typer.Option(..., help="router folder from `axial train-router`"),
        data: list[str] | None = typer.Option(None, "--data", help="routing data (default: the router's training "
                                                                   "sources; only their held-out prompts are used)"),
        method: str = typer.Option("temperature", help="temperature | none"),
        out: str | None = typer.Option(None, help="report folder (default: ROUTER/calibration)"),
        overrides: list[str] | None = typer.Argument(None, help="CalibrateConfig key=value"),
    ):
        """Fit the router's calibration on held-out prompts; report accuracy, ECE, Brier, NLL and a PNG."""
        from axial.mocae.calibrate import CalibrateConfig, _fmt, calibrate

        cfg = CalibrateConfig(router=router, data=list(data or []), method=method,
                              out=out or "").with_overrides(overrides)
        report = calibrate(cfg)
        m = report["decision_metrics"]
        for name in ("accuracy", "ece", "brier", "nll"):
            typer.echo(f"{name:9s} before {_fmt(m['before'][name])}  after {_fmt(m['after'][name])}")
        typer.echo(f"report -> {cfg.out or router + '/calibration'}")
