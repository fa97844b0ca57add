"""Preference pairs for training and validating judges, from any source `axial.data.load_records` reads.

Preference records (HH-RLHF, PKU-SafeRLHF, AlpacaEval annotations, generic chosen/rejected) give one pair each;
QA records (TruthfulQA) give every (correct answer, incorrect answer) pair of a question. Every pair carries
its prompt's split key as `group`, so dev splits and bootstrap CIs never separate pairs of one prompt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from axial.data.records import PreferenceRecord, QARecord
from axial.data.splits import split_key
from axial.errors import AxialError
from axial.rewards.features import Item

# Where each default axis's validation data sits under $AXIAL_DATA (the layout of the team's shared data folder).
DEFAULT_SOURCES = {
    "harmless": "hh-rlhf/harmless-base_test_dev.jsonl",
    "honest": "truthfulqa/TruthfulQA.csv",
    "helpful": "alpaca_eval/text_davinci_003_vs_gpt4_1106_preview_weighted_gpt4_turbo_annotations.json",
}


@dataclass(frozen=True)
class Pair:
    """A preference: `chosen` is better than `rejected` on the axis. `group` ties pairs that share a prompt
    (TruthfulQA yields several pairs per question) so splits and bootstrap CIs resample whole groups."""

    chosen: Item
    rejected: Item
    group: str


def default_source(axis: str) -> str:
    """The validation source for a default axis, found under $AXIAL_DATA; a clear error otherwise."""
    if axis not in DEFAULT_SOURCES:
        raise AxialError(f"no default validation data for axis '{axis}'; pass a source (--data) with "
                         "preference pairs or QA records for it")
    root = os.environ.get("AXIAL_DATA")
    if not root:
        raise AxialError(f"axis '{axis}': no data source given and AXIAL_DATA is not set; pass --data or set "
                         f"AXIAL_DATA to a folder holding {DEFAULT_SOURCES[axis]}")
    path = Path(root) / DEFAULT_SOURCES[axis]
    if not path.exists():
        raise AxialError(f"axis '{axis}': default data {path} not found (AXIAL_DATA={root})")
    return str(path)


def preference_pairs(axis: str, source: str, *, split: str, limit: int | None = None,
                     seed: int = 0) -> list[Pair]:
    """Pairs from `source` on one side of the hash split. `limit` keeps a deterministic subset of PROMPTS
    (hash order, not file order, so it is not biased by how the file is sorted). Ties are left out."""
    from axial.data.readers import load_records
    from axial.stats import deterministic_subset

    records = load_records(source, split=split, axis=axis).records
    if not records:
        raise AxialError(f"'{source}': no records in split={split}")
    keep = deterministic_subset([split_key(r) for r in records], limit, seed)
    pairs: list[Pair] = []
    for record in (records[i] for i in keep):
        group = split_key(record)
        if isinstance(record, PreferenceRecord):
            if record.meta.get("tie"):
                continue
            pairs.append(Pair(Item.of(record.messages, record.chosen), Item.of(record.messages, record.rejected),
                              group))
        elif isinstance(record, QARecord):
            for good in dict.fromkeys(record.correct_answers):
                for bad in dict.fromkeys(record.incorrect_answers):
                    pairs.append(Pair(Item.of(record.messages, good), Item.of(record.messages, bad), group))
        else:
            raise AxialError(f"'{source}': {type(record).__name__} records carry no preference; a judge needs "
                             "chosen/rejected pairs or QA records with correct and incorrect answers")
    if not pairs:
        raise AxialError(f"'{source}' (split={split}): no usable pairs (all ties or no answers)")
    return pairs
