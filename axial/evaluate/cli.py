"""`axial eval`: the CLI face of axial.evaluate.evaluate (same names, same config)."""

from __future__ import annotations

from pathlib import Path

import typer

from axial.errors import AxialError


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, val = v.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise AxialError(f"{flag} '{v}': expected KEY=VALUE")
        out[key.strip()] = val.strip()
    return out


def _int_values(pairs: dict[str, str], flag: str) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in pairs.items()}
    except ValueError as e:
        raise AxialError(f"{flag}: {e}") from None


def eval_command(
    model: str = typer.Option("embedded", "--model", help="base model: embedded | HF id | folder | .gguf"),
    experts: list[str] = typer.Option(None, "--experts", help="expert adapter folder (repeatable)"),
    variant: list[str] = typer.Option(None, "--variant",
                                      help="weight source, one per variant (repeatable): base | uniform | "
                                           "expert:NAME | pref:helpful=0.7,... | mocae:DIR; default base"),
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
    judge: list[str] = typer.Option(None, "--judge", help="AXIS=SPEC (repeatable), e.g. harmless=rm:DIR; "
                                                          "default: embedded (weak judge)"),
    judge_validation: list[str] = typer.Option(None, "--judge-validation",
                                               help="AXIS=FILE (repeatable): that judge's `axial validate-judge "
                                                    "--out` JSON, reused instead of validating again"),
    dtype: str = typer.Option("auto", "--dtype", help="auto | fp32 | bf16 | fp16"),
    device: str = typer.Option("auto", "--device"),
    no_judge: bool = typer.Option(False, "--no-judge", help="only generate and store responses; judge later "
                                                            "by re-running with the same --out"),
    overrides: list[str] = typer.Option(None, "--set", help="EvalConfig KEY=VALUE (e.g. max_new_tokens=128)"),
) -> None:
    """Evaluate one or more variants on TruthfulQA (MC / generation), harmless prompts and Alpaca."""
    from rich.console import Console
    from rich.table import Table

    from axial.evaluate.config import EvalConfig
    from axial.evaluate.harness import evaluate
    from axial.variants import VariantSpec

    limit_all = [v for v in limit or [] if "=" not in v]
    if len(limit_all) > 1:
        raise AxialError(f"--limit: give one default N, got {limit_all}")
    split_all = [s for s in split or [] if "=" not in s]
    if len(split_all) > 1:
        raise AxialError(f"--split: give one default (test or all), got {split_all}")
    config = EvalConfig(
        benches=[b.strip() for b in bench.split(",") if b.strip()], data=_pairs(data, "--data"),
        split=split_all[0] if split_all else "test",
        splits=_pairs([s for s in split or [] if "=" in s], "--split"),
        limit=limit_all[0] if limit_all else None, limits=_int_values(_pairs([v for v in limit or [] if "=" in v], "--limit"), "--limit"),
        seed=seed,
        judges=_pairs(judge, "--judge"), judge_validation=_pairs(judge_validation, "--judge-validation"),
        judge=not no_judge).with_overrides(overrides)
    specs = [VariantSpec(model=model, experts=list(experts or []), source=s, dtype=dtype, device=device)
             for s in (variant or ["base"])]
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
    app.command("eval")(eval_command)
