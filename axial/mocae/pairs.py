"""Per-axis preference pairs for training routers on alignment (axial.mocae.objective).

A pair is (prompt, chosen, rejected) labelled with the axis it speaks for: the router should learn to make the
mixture prefer `chosen` when the prompt is one where that axis matters. Sources are given like routing data:

    AXIS=PATH       any file `axial.data.load_records` reads that holds preferences, e.g.
                    harmless=hh-rlhf/harmless-base_test_dev.jsonl      (HH-RLHF chosen / rejected)
                    honest=truthfulqa/TruthfulQA.csv                    (a correct vs an incorrect answer)
                    helpful=alpaca_eval/gpt4_annotations/annotations_alpaca_eval_gpt4.jsonl.gz
                                                                        (GPT-4's preferred vs other output)
    builtin:AXIS    the package's small hand-written pairs for that axis (demo data, not a benchmark)

Only the dataset's train half is read (`split="train"` of axial.data's hash split by prompt), so every test half
stays untouched for evaluation; `part="test"` reads that test half instead, whole (what benchmarks score
held-out pairs on, e.g. benchmarks/routing_sweep_pairs.py). Inside the train half the same second hash split as the source-label router
(axial.mocae.data, salt `mocae-router`) holds out `heldout_fraction` of the prompts: `part="train"` trains the
router, `heldout` (split again into `calibration` / `report`) calibrates and reports it.

What is left out is counted, never dropped silently (`PairSet.excluded`): records a reader could not parse
(e.g. AlpacaEval annotations with no valid label), ties, pairs with an empty side, and pairs beyond
`pairs_per_prompt` (TruthfulQA gives every correct x incorrect answer of a question, the GPT-4 annotations 53
outputs per instruction; the pairs kept per prompt are picked by a seeded hash, so a larger value gives a
superset).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from axial.data.splits import hash_split, split_key
from axial.errors import AxialError
from axial.mocae.data import CALIBRATION_SALT, PARTS, ROUTER_SALT, RoutingExample

_LABELLED = re.compile(r"^(?P<axis>[a-z][a-z0-9_]{0,31})=(?P<path>.+)$")


@dataclass(frozen=True)
class PreferencePair:
    messages: tuple[tuple[str, str], ...]  # (role, content) of the prompt's turns
    chosen: str
    rejected: str
    axis: str
    key: str  # the prompt's split key
    source: str

    @property
    def message_list(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    @property
    def id(self) -> str:
        """Stable identity of the pair (prompt and both responses): caches are keyed by it."""
        payload = "\x1f".join([self.key, *(f"{r}:{c}" for r, c in self.messages), self.chosen, self.rejected])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class PairSet:
    pairs: list[PreferencePair]
    part: str
    excluded: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> reason -> count

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.pairs:
            out[p.axis] = out.get(p.axis, 0) + 1
        return out

    def prompts(self) -> dict[str, int]:
        out: dict[str, set[str]] = {}
        for p in self.pairs:
            out.setdefault(p.axis, set()).add(p.key)
        return {a: len(v) for a, v in out.items()}

    def describe(self) -> dict:
        return {"part": self.part, "pairs": self.counts(), "prompts": self.prompts(), "excluded": self.excluded}


def source_axis(source: str) -> str:
    """The axis a pair source speaks for ('builtin:AXIS' or 'AXIS=PATH')."""
    if source.startswith("builtin:"):
        return source[len("builtin:"):]
    m = _LABELLED.match(source)
    if not m:
        raise AxialError(f"pair source '{source}': expected AXIS=PATH or builtin:AXIS (e.g. "
                         "harmless=hh-rlhf/harmless-base_test_dev.jsonl)")
    return m["axis"]


def _read(source: str, split: str = "train") -> tuple[str, list, int]:
    """(axis, records of the `split` half, records the reader could not parse).

    The one place that reads pair files. Unparseable records are skipped and counted rather than fatal because
    the AlpacaEval GPT-4 annotations carry 249 records with no valid label (null), which this reader refuses.
    """
    from axial.data import builtin_axis_set, load_records

    axis = source_axis(source)
    if source.startswith("builtin:"):
        return axis, builtin_axis_set(axis, kind="preference"), 0
    loaded = load_records(source.partition("=")[2], split=split, axis=axis, skip_invalid=True)
    return axis, loaded.records, loaded.n_invalid


def _pair_rank(pair: PreferencePair, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{pair.id}".encode()).hexdigest()


def preference_pairs(sources: list[str], axes: list[str], part: str, *, heldout_fraction: float = 0.3,
                     per_axis_limit: int | None = None, pairs_per_prompt: int | None = 2,
                     seed: int = 0) -> PairSet:
    """The pairs of one part (train | heldout | calibration | report of the train half, or test: the test half)
    with at most `per_axis_limit` prompts per axis (seeded hash order, so a larger limit gives a superset) and
    `pairs_per_prompt` pairs per prompt."""
    from axial.data.records import PreferenceRecord, QARecord
    from axial.stats import hash_order

    if part not in (*PARTS, "test"):
        raise AxialError(f"pair data part '{part}': expected one of {[*PARTS, 'test']}")
    if part == "test" and any(s.startswith("builtin:") for s in sources):
        raise AxialError("pair data part 'test': built-in pairs have no test half (they are demo data); "
                         "give AXIS=PATH sources")
    if not sources:
        raise AxialError("pair data: no sources given (e.g. harmless=hh-rlhf/harmless-base_test_dev.jsonl)")
    if pairs_per_prompt is not None and pairs_per_prompt < 1:
        raise AxialError(f"pairs_per_prompt must be >= 1, got {pairs_per_prompt}")
    by_prompt: dict[str, dict[str, list[PreferencePair]]] = {a: {} for a in axes}
    excluded: dict[str, dict[str, int]] = {}
    for source in sources:
        axis, records, n_invalid = _read(source, "test" if part == "test" else "train")
        if axis not in by_prompt:
            raise AxialError(f"pair source '{source}': axis '{axis}' is not one of the router's axes {axes}")
        skipped = excluded.setdefault(source, {})

        def skip(reason: str, n: int = 1, _skipped=skipped) -> None:
            _skipped[reason] = _skipped.get(reason, 0) + n

        if n_invalid:
            skip("record not readable (e.g. no valid label)", n_invalid)
        for record in records:
            key = split_key(record)
            if part != "test" and (part == "train") != (hash_split(key, heldout_fraction, ROUTER_SALT) == "train"):
                continue
            if part in ("calibration", "report") and \
                    ("calibration" if hash_split(key, 0.5, CALIBRATION_SALT) == "train" else "report") != part:
                continue
            messages = tuple((m["role"], m["content"]) for m in record.messages)
            if isinstance(record, PreferenceRecord):
                if record.meta.get("tie"):
                    skip("tie")
                    continue
                if record.meta.get("label") == "none":
                    skip("no valid label")
                    continue
                options = [(record.chosen, record.rejected)]
            elif isinstance(record, QARecord):
                options = [(good, bad) for good in dict.fromkeys(record.correct_answers)
                           for bad in dict.fromkeys(record.incorrect_answers)]
            else:
                raise AxialError(f"pair source '{source}': {type(record).__name__} records carry no preference; "
                                 "give chosen/rejected pairs or QA records with correct and incorrect answers")
            for chosen, rejected in options:
                if not chosen.strip() or not rejected.strip():
                    skip("empty chosen or rejected")
                    continue
                if chosen.strip() == rejected.strip():
                    skip("chosen == rejected")
                    continue
                pair = PreferencePair(messages, chosen, rejected, axis, key, source)
                by_prompt[axis].setdefault(key, []).append(pair)
    out: list[PreferencePair] = []
    for prompts in by_prompt.values():
        keys = list(prompts)
        if per_axis_limit is not None and len(keys) > per_axis_limit:
            dropped = [keys[i] for i in hash_order(keys, seed)[per_axis_limit:]]
            for k in dropped:
                for p in prompts.pop(k):
                    excluded.setdefault(p.source, {})
                    excluded[p.source]["prompt beyond per_axis_limit"] = \
                        excluded[p.source].get("prompt beyond per_axis_limit", 0) + 1
        for key in sorted(prompts):
            members = sorted(prompts[key], key=lambda p: _pair_rank(p, seed))
            if pairs_per_prompt is not None and len(members) > pairs_per_prompt:
                for p in members[pairs_per_prompt:]:
                    excluded[p.source]["beyond pairs_per_prompt"] = \
                        excluded[p.source].get("beyond pairs_per_prompt", 0) + 1
                members = members[:pairs_per_prompt]
            out.extend(members)
    missing = [a for a in axes if not any(p.axis == a for p in out)]
    if missing:
        raise AxialError(f"pair data ({part}): no pairs for axis/axes {missing} in {sources}")
    return PairSet(out, part, excluded)


def pair_routing_examples(sources: list[str], expert_names: list[str], part: str, *, heldout_fraction: float,
                          per_axis_limit: int | None, seed: int = 0) -> list[RoutingExample]:
    """One routing example per prompt of the pairs (label = the expert named as the pair's axis): what
    calibration scores a preference-trained router against."""
    axes = list(dict.fromkeys(source_axis(s) for s in sources))
    unknown = [a for a in axes if a not in expert_names]
    if unknown:
        raise AxialError(f"pair data: axis/axes {unknown} have no expert among {expert_names}")
    pairs = preference_pairs(sources, axes, part, heldout_fraction=heldout_fraction, per_axis_limit=per_axis_limit,
                             pairs_per_prompt=1, seed=seed).pairs
    return [RoutingExample([{"role": r, "content": c} for r, c in p.messages], p.chosen, p.axis,
                           expert_names.index(p.axis), p.key, p.source) for p in pairs]
