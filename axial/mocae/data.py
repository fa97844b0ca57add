"""Mixed-axis routing data: prompts with the axis (= expert) that should handle them.

Sources: `builtin:AXIS` (the package's demo sets), files through `axial.data.load_records` (the record's own
axis is the label), or `AXIS=PATH` to set the label. Dataset splits: only the dataset's *train* side is read
(`split="train"` of axial.data's hash split), so the benchmark halves stay untouched for evaluation. Inside
it, a second hash split (salt `mocae-router`) holds out `heldout_fraction` of prompts from router training;
the held-out part is split again (salt `mocae-calibration`) into a calibration-fit half and a report half.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from axial.data.splits import hash_split, split_key
from axial.errors import AxialError

ROUTER_SALT = "mocae-router"
CALIBRATION_SALT = "mocae-calibration"
PARTS = ("train", "heldout", "calibration", "report")
_LABELLED = re.compile(r"^(?P<axis>[a-z][a-z0-9_]{0,31})=(?P<path>.+)$")


@dataclass
class RoutingExample:
    messages: list[dict]
    response: str
    axis: str
    label: int
    key: str  # the split key (first user message / question)
    source: str


def _response(record) -> str:
    for attr in ("response", "chosen", "best_answer"):
        value = getattr(record, attr, None)
        if isinstance(value, str):
            return value
    return ""


def _records(source: str):
    from axial.data import builtin_axis_set, load_records

    if source.startswith("builtin:"):
        return builtin_axis_set(source[len("builtin:"):], kind="sft")
    m = _LABELLED.match(source)
    if m:
        return load_records(m["path"], split="train", axis=m["axis"]).records
    return load_records(source, split="train").records


def routing_examples(sources: list[str], expert_names: list[str], part: str, *, heldout_fraction: float,
                     per_axis_limit: int | None, seed: int = 0) -> list[RoutingExample]:
    """Examples of one part (train | heldout | calibration | report), at most per_axis_limit per axis.

    The limit picks by a seeded hash order (not the first N), and applies to the part, so a larger limit gives
    a superset and never moves a prompt between parts.
    """
    from axial.stats import hash_order

    if part not in PARTS:
        raise AxialError(f"routing data part '{part}': expected one of {list(PARTS)}")
    if not sources:
        raise AxialError("routing data: no sources given (e.g. builtin:helpful or helpful=path/to/alpaca.json)")
    by_axis: dict[str, list[RoutingExample]] = {name: [] for name in expert_names}
    for source in sources:
        records = _records(source)
        for i, record in enumerate(records):
            axis = record.axis
            if axis not in by_axis:
                raise AxialError(f"{source}: record #{i} (id={record.id!r}) has axis {axis!r}, but the experts are "
                                 f"{expert_names}; label the source with AXIS=PATH or add that expert")
            key = split_key(record)
            side = hash_split(key, heldout_fraction, ROUTER_SALT)
            if part == "train" and side != "train" or part != "train" and side != "test":
                continue
            if part in ("calibration", "report"):
                half = "calibration" if hash_split(key, 0.5, CALIBRATION_SALT) == "train" else "report"
                if half != part:
                    continue
            by_axis[axis].append(RoutingExample(list(record.messages), _response(record), axis,
                                                expert_names.index(axis), key, source))
    out: list[RoutingExample] = []
    for items in by_axis.values():
        if per_axis_limit is not None and len(items) > per_axis_limit:
            keep = sorted(hash_order([e.key for e in items], seed)[:per_axis_limit])
            items = [items[i] for i in keep]
        out.extend(items)
    missing = [a for a, items in by_axis.items() if not items]
    if missing:
        raise AxialError(f"routing data ({part}): no examples for expert(s) {missing} in {sources}")
    return out
