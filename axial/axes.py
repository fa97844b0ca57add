"""The axis registry: each alignment axis is defined once here (or in a user's YAML/JSON file).

Nothing downstream may assume there are three axes: experts, routers, preferences and reports take the
axis list from here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from axial.errors import AxialError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class Axis:
    name: str
    description: str
    # AlignX stage 1: this text is put in the system turn while training the axis's expert, so the
    # expert's features stay tied to the axis instead of overwriting a shared feature space.
    injection: str
    benchmarks: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise AxialError(f"axis name '{self.name}': use lower-case letters, digits and '_' "
                             "(starting with a letter, at most 32 characters)")
        if not self.injection.strip():
            raise AxialError(f"axis '{self.name}': field 'injection' is empty")


DEFAULT_AXES: tuple[Axis, ...] = (
    Axis(
        name="helpful",
        description="Follows the instruction and gives a complete, accurate, useful answer.",
        injection="Focus on helpfulness: follow the user's instruction fully and give a clear, complete, "
                  "useful answer.",
        benchmarks=("alpaca",),
    ),
    Axis(
        name="harmless",
        description="Declines to help with harm, explains why, and still helps with any safe need behind the request.",
        injection="Focus on harmlessness: do not help with anything dangerous, illegal or hurtful; decline "
                  "briefly, explain why, and offer a safe alternative where one exists.",
        benchmarks=("harmless",),
    ),
    Axis(
        name="honest",
        description="Says what is true, corrects misconceptions, and admits uncertainty instead of inventing facts.",
        injection="Focus on honesty: say only what is true, correct false assumptions in the question, and "
                  "say when you are not sure instead of guessing.",
        benchmarks=("truthfulqa_mc", "truthfulqa_gen"),
    ),
)


def default_axes() -> list[Axis]:
    return list(DEFAULT_AXES)


def load_axes(path: str | Path | None = None) -> list[Axis]:
    """Axes from a YAML/JSON file (a list of {name, description, injection, benchmarks}) or the defaults."""
    if path is None:
        return default_axes()
    path = Path(path)
    if not path.exists():
        raise AxialError(f"axes file {path}: not found")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise AxialError(f"axes file {path}: cannot parse: {e}") from e
    if isinstance(data, dict) and "axes" in data:
        data = data["axes"]
    if not isinstance(data, list) or not data:
        raise AxialError(f"axes file {path}: expected a non-empty list of axes (or a mapping with key 'axes')")
    axes = []
    for i, item in enumerate(data):
        where = f"axes file {path}: axis #{i}"
        if not isinstance(item, dict):
            raise AxialError(f"{where}: expected a mapping")
        unknown = set(item) - {"name", "description", "injection", "benchmarks"}
        if unknown:
            raise AxialError(f"{where}: unknown field(s) {sorted(unknown)}")
        for key in ("name", "injection"):
            if not isinstance(item.get(key), str):
                raise AxialError(f"{where}: field '{key}' is missing or not a string")
        try:
            axes.append(Axis(name=item["name"], description=str(item.get("description", "")),
                             injection=item["injection"], benchmarks=tuple(item.get("benchmarks") or ())))
        except AxialError as e:
            raise AxialError(f"{where}: {e}") from e
    names = [a.name for a in axes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AxialError(f"axes file {path}: duplicate axis name(s) {dupes}")
    return axes


def axis_names(axes: list[Axis] | None = None) -> list[str]:
    return [a.name for a in (axes or default_axes())]


def get_axis(name: str, axes: list[Axis] | None = None) -> Axis:
    for a in axes or default_axes():
        if a.name == name:
            return a
    raise AxialError(f"unknown axis '{name}'; known axes: {axis_names(axes)}")
