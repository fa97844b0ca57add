"""Preference pairs for training and validating judges, from any source `axial.data.load_records` reads.

Preference records (HH-RLHF, PKU-SafeRLHF, AlpacaEval annotations, PandaLM, generic chosen/rejected) give one
pair each; QA records (TruthfulQA) give every (correct answer, incorrect answer) pair of a question. Every pair
carries its prompt's split key as `group`, so CV folds and bootstrap CIs never separate pairs of one prompt.

Nothing is dropped silently: `load_pairs` returns the pairs with a count of every record left out and why
(ties, records without a valid label, exact duplicate records, pairs beyond `max_pairs_per_prompt`),
and reports print those counts.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    (TruthfulQA yields several pairs per question) so splits and bootstrap CIs resample whole groups.
    `meta` is the source record's meta (generators, annotator votes), kept for reports and subsets."""

    chosen: Item
    rejected: Item
    group: str
    record_id: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass
class PairSet:
    """The pairs of one source and split, and what was left out of them (by reason) so reports can say so."""

    pairs: list[Pair]
    source: str
    split: str
    n_records: int
    n_other_split: int = 0
    excluded: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pairs)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "split": self.split, "n_records": self.n_records,
                "n_other_split": self.n_other_split, "n_pairs": len(self.pairs),
                "n_prompts": len({p.group for p in self.pairs}), "excluded": dict(self.excluded)}


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


def _pair_rank(pair: Pair, seed: int) -> str:
    return hashlib.sha1(f"pair:{seed}:{pair.chosen.key}:{pair.rejected.key}".encode()).hexdigest()


def load_pairs(axis: str, source: str, *, split: str, limit: int | None = None, seed: int = 0,
               max_pairs_per_prompt: int | None = None) -> PairSet:
    """Pairs from `source` on one side of the hash split (split="all" for data no judge was trained on).

    limit: keep a deterministic subset of this many PROMPTS (hash order, not file order, so it is not biased by
        how the file is sorted; a larger limit gives a superset).
    max_pairs_per_prompt: keep at most this many pairs per prompt, chosen by a seeded hash of the pair's texts
        (so a larger value gives a superset and file order does not matter). AlpacaEval's GPT-4 annotations
        have 53 pairs per instruction; a CPU can featurise a fraction of them.
    """
    from axial.data.readers import load_records
    from axial.stats import hash_order

    if max_pairs_per_prompt is not None and max_pairs_per_prompt < 1:
        raise AxialError(f"max_pairs_per_prompt must be >= 1, got {max_pairs_per_prompt}")
    loaded = load_records(source, split=split, axis=axis)
    records = loaded.records
    if not records:
        raise AxialError(f"'{source}': no records in split={split}")
    groups = list(dict.fromkeys(split_key(r) for r in records))
    if limit is not None and limit < len(groups):
        kept_groups = {groups[i] for i in hash_order(groups, seed)[:limit]}
    else:
        kept_groups = set(groups)
    excluded: dict[str, int] = {}

    def skip(reason: str, n: int = 1) -> None:
        excluded[reason] = excluded.get(reason, 0) + n

    pairs: list[Pair] = []
    seen: set[str] = set()
    for record in records:
        group = split_key(record)
        if group not in kept_groups:
            skip("prompt beyond limit")
            continue
        # Only a record identical in every field (labels and generators too) is a duplicate: AlpacaEval's
        # GPT-4 file holds falcon-40b-instruct's 805 annotations twice. Distinct comparisons that happen to
        # share texts (PandaLM: two models gave the same answer; each comparison was labelled) are kept.
        ident = json.dumps({k: v for k, v in record.to_dict().items() if k not in ("id", "source")},
                           sort_keys=True, default=str)
        if ident in seen:
            skip("duplicate record")
            continue
        seen.add(ident)
        if isinstance(record, PreferenceRecord):
            label = record.meta.get("label")
            if label == "none":
                skip("no valid label")
                continue
            if record.meta.get("tie"):
                skip("tie")
                continue
            candidates = [Pair(Item.of(record.messages, record.chosen), Item.of(record.messages, record.rejected),
                               group, record.id, record.meta)]
        elif isinstance(record, QARecord):
            candidates = [Pair(Item.of(record.messages, good), Item.of(record.messages, bad), group, record.id,
                               record.meta)
                          for good in dict.fromkeys(record.correct_answers)
                          for bad in dict.fromkeys(record.incorrect_answers)]
        else:
            raise AxialError(f"'{source}': {type(record).__name__} records carry no preference; a judge needs "
                             "chosen/rejected pairs or QA records with correct and incorrect answers")
        pairs.extend(candidates)
    if max_pairs_per_prompt is not None:
        by_group: dict[str, list[Pair]] = {}
        for p in pairs:
            by_group.setdefault(p.group, []).append(p)
        keep = {id(p) for members in by_group.values()
                for p in sorted(members, key=lambda p: _pair_rank(p, seed))[:max_pairs_per_prompt]}
        if len(keep) < len(pairs):
            skip("beyond max_pairs_per_prompt", len(pairs) - len(keep))
        pairs = [p for p in pairs if id(p) in keep]
    if not pairs:
        raise AxialError(f"'{source}' (split={split}): no usable pairs ({excluded or 'no answers'})")
    return PairSet(pairs, str(source), split, len(records), loaded.n_other_split, excluded)


def preference_pairs(axis: str, source: str, *, split: str, limit: int | None = None, seed: int = 0,
                     max_pairs_per_prompt: int | None = None) -> list[Pair]:
    """`load_pairs(...).pairs`: for callers that need only the pairs."""
    return load_pairs(axis, source, split=split, limit=limit, seed=seed,
                      max_pairs_per_prompt=max_pairs_per_prompt).pairs
