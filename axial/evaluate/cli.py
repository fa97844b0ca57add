"""`axial eval`: the CLI face of axial.evaluate.evaluate (same names, same config)."""

from __future__ import annotations

from pathlib import Path

import typer

from axial import cliopts
from axial.errors import AxialError
from axial.sources import SOURCE_OPTION_HELP


def _int_values(pairs: dict[str, str], flag: str) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in pairs.items()}
    except ValueError as e:
        raise AxialError(f"{flag}: {e}") from None


def eval_command(
    model: str = typer.Option("embedded", "--model", help=cliopts.MODEL_HELP),
    experts: list[str] = typer.Option(None, "--experts", help=cliopts.EXPERTS_HELP),
    source: list[str] = typer.Option(None, "--source", help="one variant per --source, side by side on the same "
                                     "items (repeatable; default base; differences are paired against the first). "
                                     + SOURCE_OPTION_HELP),
    variant: list[str] = typer.Option(None, "--variant", hidden=True, help="deprecated: --source"),
    bench: str = typer.Option("truthfulqa_mc", "--bench", help="comma list: truthfulqa_mc,truthfulqa_gen,"
                                                                "harmless,alpaca"),
    data: list[str] = typer.Option(None, "--data", help="BENCH=FILE_OR_HF_ID (repeatable; 'truthfulqa=' "
                                                        "serves both TruthfulQA benches)"),
    out: Path = typer.Option(..., "--out", help="output folder (re-run with the same folder to resume)"),
    limit: list[str] = typer.Option(None, "--limit", help="N or BENCH=N (repeatable): deterministic "
                                                          "hash-ordered subset of N items per bench"),
    seed: int = typer.Option(0, "--seed"),
    split: list[str] = typer.Option(None, "--split", help="test | all, or BENCH=test|all (repeatable); "
                                                          "default test (the hash-split held-out half)"),
    judge: list[str] = typer.Option(None, "--judge", help=cliopts.JUDGE_HELP + "; default: embedded (weak "
                                                          "judge)"),
    judge_validation: list[str] = typer.Option(None, "--judge-validation",
                                               help="AXIS=FILE (repeatable): that judge's `axial validate-judge "
                                                    "--out` JSON, reused instead of validating again"),
    dtype: str = typer.Option("auto", "--dtype", help=cliopts.DTYPE_HELP),
    device: str = typer.Option("auto", "--device", help=cliopts.DEVICE_HELP),
    no_judge: bool = typer.Option(False, "--no-judge", help="only generate and store responses; judge later "
                                                            "by re-running with the same --out"),
    set_: list[str] = typer.Option(None, "--set", hidden=True, help="deprecated: positional key=value"),
    overrides: list[str] = typer.Argument(None, help="EvalConfig " + cliopts.OVERRIDES_HELP),
) -> None:
    """Evaluate one or more variants on TruthfulQA (MC / generation), harmless prompts and Alpaca."""
    from rich.console import Console
    from rich.table import Table

    from axial.evaluate.config import EvalConfig
    from axial.evaluate.harness import evaluate
    from axial.variants import VariantSpec

    if set_:
        cliopts.deprecated("--set KEY=VALUE", "a positional KEY=VALUE")
        overrides = [*(overrides or []), *set_]
    if variant:
        cliopts.deprecated("--variant SOURCE", "--source SOURCE")
    sources = [*(source or []), *(variant or [])] or ["base"]
    limit_all = [v for v in limit or [] if "=" not in v]
    if len(limit_all) > 1:
        raise AxialError(f"--limit: give one default N, got {limit_all}")
    split_all = [s for s in split or [] if "=" not in s]
    if len(split_all) > 1:
        raise AxialError(f"--split: give one default (test or all), got {split_all}")
    config = EvalConfig(
        benches=[b.strip() for b in bench.split(",") if b.strip()], data=cliopts.pairs(data, "--data"),
        split=split_all[0] if split_all else "test",
        splits=cliopts.pairs([s for s in split or [] if "=" in s], "--split"),
        limit=limit_all[0] if limit_all else None, limits=_int_values(cliopts.pairs([v for v in limit or [] if "=" in v], "--limit"), "--limit"),
        seed=seed,
        judges=cliopts.judges(judge), judge_validation=cliopts.pairs(judge_validation, "--judge-validation"),
        judge=not no_judge).with_overrides(overrides)
    specs = [VariantSpec(model=model, experts=cliopts.experts_list(experts), source=s, dtype=dtype, device=device)
             for s in sources]
    report = evaluate(specs, config.benches, None, out, config)

    table = Table(title=f"axial eval -> {out}/report.md")
    table.add_column("variant")
    table.add_column("bench")
    table.add_column("metric")
    table.add_column("value [95% CI]")
    table.add_column("n", justify="right")
    for name, benches in report["results"].items():
        for b, metrics in benches.items():
            if "status" in metrics:
                table.add_row(name, b, "-", metrics["status"], "")
                continue
            for k in report["benches"][b]["headline"] + [k for k in metrics if k.endswith("_norm")]:
                m = metrics[k]
                table.add_row(name, b, k + (" *" if m.get("judged") else ""),
                              f"{m['value']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]", str(m["n"]))
    Console().print(table)
    if any(report["benches"][b]["judged"] for b in report["benches"]):
        Console().print("* judged; judges and their validation are listed in report.md")


def register(app: typer.Typer) -> None:
    from axial.evaluate import pareto

    app.command("eval")(eval_command)
    pareto.register(app)
