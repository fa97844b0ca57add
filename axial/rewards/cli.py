"""`axial train-reward` and `axial validate-judge`: the CLI face of axial.rewards (same names, same options)."""

from __future__ import annotations

from pathlib import Path

import typer

from axial.io import atomic_write_json
from axial.rewards.registry import SPEC_HELP


def register(app: typer.Typer) -> None:
    @app.command("train-reward")
    def train_reward_cmd(
        axis: str = typer.Option(..., help="axis the reward model judges (e.g. harmless, honest)"),
        data: str = typer.Option(..., help="preference pairs or QA records (file or HF id); split=train is used"),
        out: Path = typer.Option(..., help="output folder: reward_head.safetensors + reward_config.json"),
        overrides: list[str] = typer.Argument(None, help="RewardConfig key=value overrides, e.g. layer=15"),
    ) -> None:
        """Train a Bradley-Terry head on a frozen encoder; report held-out (split=test) pair accuracy."""
        from axial.rewards.bradley_terry import RewardConfig, summary, train_reward

        config = RewardConfig(axis=axis, data=data, out=str(out)).with_overrides(overrides)
        path = train_reward(config)
        typer.echo(summary(path))
        typer.echo(f"saved to {path}")

    @app.command("validate-judge")
    def validate_judge_cmd(
        axis: str = typer.Option(..., help="axis to validate on"),
        judge: str = typer.Option("embedded", help=SPEC_HELP),
        data: str | None = typer.Option(None, help="validation source (default: the axis's data under $AXIAL_DATA)"),
        limit: int | None = typer.Option(None, help="validate on a deterministic subset of this many prompts"),
        out: Path | None = typer.Option(None, help="write the result JSON here"),
    ) -> None:
        """Agreement of a judge with human/GPT-4 labels on held-out (split=test) data, with a 95% CI."""
        from axial.rewards.registry import load_judge
        from axial.rewards.validate import format_validation, validate_judge

        result = validate_judge(load_judge(judge, axis=axis), axis, source=data, limit=limit)
        typer.echo(format_validation(result))
        if out is not None:
            atomic_write_json(out, result)
