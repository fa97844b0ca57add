"""Built-in axis sets: small hand-written demo data per axis (NOT benchmarks), shipped inside the package.

Each axis_sets/<axis>.jsonl line is a PreferenceRecord: a prompt, a good `chosen` answer and a worse `rejected`
one (helpful: a vague or incomplete answer; harmless: a compliant but non-operational answer to a harmful
request; honest: the misconception repeated). kind="sft" gives the prompt with the chosen answer only.

The honest set deliberately avoids the misconceptions TruthfulQA asks about (each topic was checked against
the 817 questions), so an expert trained on it can be scored on TruthfulQA without topic leakage.
"""

from __future__ import annotations

from importlib import resources

from axial.data.readers import load_records
from axial.data.records import PreferenceRecord, SFTRecord
from axial.errors import AxialError

_PACKAGE_DIR = "axis_sets"


def _files() -> dict[str, object]:
    folder = resources.files("axial.data").joinpath(_PACKAGE_DIR)
    return {f.name.removesuffix(".jsonl"): f for f in folder.iterdir() if f.name.endswith(".jsonl")}


def builtin_axes_available() -> list[str]:
    """Axes that have a built-in set, in alphabetical order."""
    return sorted(_files())


def builtin_axis_set(axis: str, kind: str = "sft", *, split: str | None = None,
                     test_fraction: float = 0.5) -> list[SFTRecord] | list[PreferenceRecord]:
    """The built-in records for `axis` as SFT records (prompt + chosen answer) or preference pairs.

    split: "train" | "test" | "all" (None = all), by the same prompt hash as `load_records`.
    """
    files = _files()
    if axis not in files:
        raise AxialError(f"no built-in set for axis '{axis}'; available: {', '.join(sorted(files))}")
    if kind not in ("sft", "preference"):
        raise AxialError(f"kind '{kind}': expected 'sft' or 'preference'")
    with resources.as_file(files[axis]) as path:
        pairs = load_records(path, "preference", split=split, test_fraction=test_fraction).records
    for p in pairs:
        p.source = f"builtin:{axis}"
    if kind == "preference":
        return pairs
    return [SFTRecord(p.messages, p.chosen, axis=p.axis, id=p.id, source=p.source, meta=p.meta) for p in pairs]
