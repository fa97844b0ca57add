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
        judge: list[str] = typer.Option(["embedded"], help=f"judge spec, repeatable: {SPEC_HELP}"),
        data: list[str] = typer.Option(None, help="validation source, repeatable (default: the axis's data "
                                                  "under $AXIAL_DATA)"),
        split: list[str] = typer.Option(["test"], help="split per --data (one value applies to all): test, or "
                                                       "all for data no judge was trained on (e.g. PandaLM)"),
        limit: int | None = typer.Option(None, help="validate on a deterministic subset of this many prompts"),
        max_pairs_per_prompt: list[str] = typer.Option(None, help="deterministic subset of at most this many "
                                                                  "pairs per prompt, per --data (one value "
                                                                  "applies to all); 'all' = every pair"),
        out: Path | None = typer.Option(None, help="write OUT.json (schema in axial.rewards.validate) and "
                                                   "OUT.md / OUT.png beside it"),
        record: bool = typer.Option(False, help="also write each rm: judge's results into its folder "
                                                "(validation.json), so reports that load it quote them"),
    ) -> None:
        """Agreement of judges with human/GPT-4 labels on unseen pairs, beside the length-only baseline, with
        95% CIs (all pairs, unequal lengths, length-balanced, shorter-wins)."""
        import sys

        from axial.errors import AxialError
        from axial.rewards.pairs import default_source
        from axial.rewards.registry import load_judge
        from axial.rewards.validate import format_validation, validate_judges, write_validation

        sources = list(data) if data else [default_source(axis)]
        if len(split) not in (1, len(sources)):
            raise AxialError(f"validate-judge: give one --split for all --data or one per --data; got "
                             f"{len(split)} for {len(sources)}")
        splits = split * len(sources) if len(split) == 1 else split
        caps_given = list(max_pairs_per_prompt) if max_pairs_per_prompt else ["all"]
        if len(caps_given) not in (1, len(sources)):
            raise AxialError(f"validate-judge: give one --max-pairs-per-prompt for all --data or one per --data; "
                             f"got {len(caps_given)} for {len(sources)}")
        caps = [_cap(c) for c in (caps_given * len(sources) if len(caps_given) == 1 else caps_given)]
        judges = []
        for spec in judge:
            j = load_judge(spec, axis=axis)
            j.spec = spec
            judges.append(j)
        doc = validate_judges(judges, axis, list(zip(sources, splits, strict=True)), limit=limit,
                              max_pairs_per_prompt=caps,
                              command="axial " + " ".join(sys.argv[1:]), progress=typer.echo)
        for result in doc["results"]:
            typer.echo(format_validation(result))
        if out is not None:
            for path in write_validation(doc, out):
                typer.echo(f"wrote {path}")
        if record:
            for j in judges:
                if j.kind == "rm" and j.path:
                    mine = {**doc, "results": [r for r in doc["results"] if r["judge"]["name"] == j.name]}
                    path = Path(j.path) / "validation.json"
                    atomic_write_json(path, mine)
                    typer.echo(f"wrote {path}")


def _cap(value: str) -> int | None:
    from axial.errors import AxialError

    if value.strip().lower() == "all":
        return None
    try:
        cap = int(value)
    except ValueError:
        cap = 0
    if cap < 1:
        raise AxialError(f"validate-judge --max-pairs-per-prompt: give a whole number >= 1 or 'all', got '{value}'")
    return cap
