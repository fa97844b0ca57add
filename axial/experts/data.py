"""Turn axial records into TRL datasets: conversational prompt/completion (SFT) or prompt/chosen/rejected (DPO).

The axis injection (AlignX stage 1) goes into the system turn here, so it is visible in exactly one place.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from axial.axes import get_axis
from axial.data.records import Message, PreferenceRecord, QARecord, SFTRecord
from axial.errors import AxialError

logger = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"


def with_injection(messages: Sequence[Message], injection: str | None) -> list[Message]:
    """The prompt messages, with the injection as (the start of) the system turn when given."""
    msgs = [dict(m) for m in messages]
    if not injection:
        return msgs
    if msgs and msgs[0]["role"] == "system":
        msgs[0]["content"] = f"{injection}\n\n{msgs[0]['content']}"
        return msgs
    return [{"role": "system", "content": injection}] + msgs


def _prompt_messages(record, where: str) -> list[Message]:
    msgs = record.messages
    if not msgs or msgs[-1]["role"] != "user":
        raise AxialError(f"{where}: prompt must end with a user turn")
    return msgs


def to_example(record, method: str, injection: str | None, where: str) -> dict:
    """One TRL example from one record. SFT trains on the good response (chosen / best answer) only."""
    prompt = with_injection(_prompt_messages(record, where), injection)
    if isinstance(record, SFTRecord):
        good, bad = record.response, None
    elif isinstance(record, PreferenceRecord):
        good, bad = record.chosen, record.rejected
    elif isinstance(record, QARecord):
        good = record.best_answer
        bad = record.incorrect_answers[0] if record.incorrect_answers else None
    else:
        raise AxialError(f"{where}: records of type {type(record).__name__} cannot train an expert "
                         "(use SFT, preference or QA records)")
    if not good or not good.strip():
        raise AxialError(f"{where}: empty response")

    def turn(text: str) -> list[Message]:
        return [{"role": "assistant", "content": text}]

    if method == "sft":
        return {"prompt": prompt, "completion": turn(good)}
    if bad is None or not bad.strip():
        raise AxialError(f"{where}: DPO needs a rejected response, and this {type(record).__name__} has none "
                         "(use --method sft, or preference data)")
    return {"prompt": prompt, "chosen": turn(good), "rejected": turn(bad)}


def build_examples(tagged: Sequence[tuple[str, object]], method: str, inject: bool, *,
                   skip_invalid: bool = False) -> tuple[list[dict], list[str]]:
    """Examples from (axis, record) pairs; each record gets its own axis's injection when `inject`.

    A record that cannot make an example raises, or with `skip_invalid` is left out and its reason returned
    (the caller reports them), so nothing disappears silently.
    """
    out, skipped = [], []
    for i, (axis, record) in enumerate(tagged):
        injection = get_axis(axis).injection if inject else None
        where = f"record #{i} ({getattr(record, 'source', '') or axis} id={getattr(record, 'id', '')!r})"
        try:
            out.append(to_example(record, method, injection, where))
        except AxialError as e:
            if not skip_invalid:
                raise
            skipped.append(str(e))
    return out, skipped


def load_axis_records(sources: Sequence[str], *, method: str, split: str, limit: int | None,
                      skip_invalid: bool = False) -> list:
    """Records from data sources: files / HF ids through axial.data.load_records, or `builtin:AXIS`.

    Built-in axis sets are demo data no benchmark uses, so `split` does not apply to them.
    """
    from axial.data import builtin_axis_set, load_records

    records: list = []
    for source in sources:
        if source.startswith(BUILTIN_PREFIX):
            kind = "preference" if method == "dpo" else "sft"
            got = list(builtin_axis_set(source[len(BUILTIN_PREFIX):], kind=kind))
            records.extend(got[:limit] if limit else got)
        else:
            loaded = load_records(source, split=split, limit=limit, skip_invalid=skip_invalid)
            for error in loaded.invalid:
                logger.warning("skipped invalid record: %s", error)
            records.extend(loaded.records)
    if not records:
        raise AxialError(f"no training records in {list(sources)} (split={split})")
    return records
