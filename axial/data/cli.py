"""`axial data ...`: the data layer on the command line (same names as the Python API)."""

from __future__ import annotations

import json

import typer

from axial.data.readers import load_records


def _shorten(value, width: int = 300):
    if isinstance(value, str) and len(value) > width:
        return value[:width] + f"... [{len(value)} chars]"
    if isinstance(value, list):
        return [_shorten(v, width) for v in value]
    if isinstance(value, dict):
        return {k: _shorten(v, width) for k, v in value.items()}
    return value


def inspect(source: str, kind: str | None = None, *, skip_invalid: bool = False, split: str | None = None,
            limit: int | None = None, dedupe: bool = False) -> str:
    """A readable report on `source`: kind, record count, invalid and duplicate counts (the first few of each,
    with file:line), one example."""
    result = load_records(source, kind, skip_invalid=skip_invalid, split=split, limit=limit, dedupe=dedupe)
    lines = [result.summary()]
    if result.records:
        example = result.records[0]
        lines += [f"example ({example.id}):", json.dumps(_shorten(example.to_dict()), indent=2, ensure_ascii=False)]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(name="data", no_args_is_help=True, help="Read, check and inspect datasets.")

    @data_app.command("inspect")
    def inspect_cmd(
        source: str = typer.Argument(..., help=".json/.jsonl/.csv/.parquet file (optionally .gz) or hub id "
                                               "owner/name[:config]:split"),
        kind: str | None = typer.Option(None, help="dataset kind; detected from the fields when omitted"),
        skip_invalid: bool = typer.Option(False, "--skip-invalid", help="skip malformed records (counted "
                                                                        "and listed) instead of failing"),
        split: str | None = typer.Option(None, help="train | test | all: one side of the hash split"),
        limit: int | None = typer.Option(None, help="read at most this many records"),
        dedupe: bool = typer.Option(False, "--dedupe", help="drop records repeating an earlier record's content "
                                                            "(always counted and listed)"),
    ):
        """Print the kind, record count, invalid and duplicate counts (with the first of each) and one example."""
        typer.echo(inspect(source, kind, skip_invalid=skip_invalid, split=split, limit=limit, dedupe=dedupe))

    app.add_typer(data_app)
