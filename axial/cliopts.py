"""The one flag vocabulary every `axial <verb>` speaks, and its parsers.

    --model SPEC             embedded | HF hub id | model folder | .gguf file
    --experts DIR            an expert adapter folder; repeat per expert (a comma list is accepted too)
    --source SOURCE          a weight source (axial.sources grammar); eval takes it repeatedly, side by side
    --judge AXIS=SPEC        a judge per axis (axial.rewards grammar); repeat per axis
    --dtype / --device       auto | fp32 | bf16 | fp16 ;  auto | cpu | cuda
    key=value ...            config overrides (the command's dataclass config), positional, torchtune style

Ground floor on purpose (imports nothing of axial but errors): every package's CLI may use it.
"""

from __future__ import annotations

import typer

from axial.errors import AxialError

MODEL_HELP = "base model: embedded | HF hub id | model folder | .gguf file"
EXPERTS_HELP = "expert adapter folder; repeat per expert (a comma list also works)"
JUDGE_HELP = "AXIS=JUDGE_SPEC; repeat per axis (e.g. --judge harmless=rm:DIR --judge honest=embedded)"
OVERRIDES_HELP = "config overrides as key=value (e.g. max_new_tokens=128)"
DTYPE_HELP = "auto | fp32 | bf16 | fp16"
DEVICE_HELP = "auto | cpu | cuda"


def experts_list(items: list[str] | None) -> list[str]:
    """`--experts a --experts b` and `--experts a,b` both give [a, b]."""
    return [p.strip() for item in items or [] for p in item.split(",") if p.strip()]


def pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """['a=x', 'b=y'] -> {a: x, b: y}; a missing '=', an empty side or a repeated key is an error."""
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, val = v.partition("=")
        key, val = key.strip(), val.strip()
        if not sep or not key or not val:
            raise AxialError(f"{flag} '{v}': expected KEY=VALUE")
        if key in out:
            raise AxialError(f"{flag}: '{key}' given twice ('{out[key]}' and '{val}')")
        out[key] = val
    return out


def judges(values: list[str] | None, legacy: str | None = None) -> dict[str, str]:
    """--judge AXIS=SPEC (repeated) -> {axis: spec}. `legacy` is an old comma-separated `--judges a=x,b=y`."""
    items = list(values or [])
    if legacy:
        deprecated("--judges a=x,b=y", "--judge a=x --judge b=y")
        items += [p for p in legacy.split(",") if p.strip()]
    return pairs(items, "--judge")


def deprecated(old: str, new: str) -> None:
    """Old spellings work for one release; say what to use instead (stderr, so pipes stay clean)."""
    typer.echo(f"note: {old} is deprecated; use {new}", err=True)
