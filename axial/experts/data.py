"""Turn axial records into TRL datasets: conversational prompt/completion (SFT) or prompt/chosen/rejected (DPO).

The axis injection (AlignX stage 1) goes into the system turn here, so it is visible in exactly one place.
"""

from __future__ import annotations

from collections.abc import Sequence

from axial.axes import get_axis
from axial.data.records import Message, PreferenceRecord, QARecord, SFTRecord
from axial.errors import AxialError

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


def build_examples(tagged: Sequence[tuple[str, object]], method: str, inject: bool) -> list[dict]:
    """Examples from (axis, record) pairs; each record gets its own axis's injection when `inject`."""
    out = []
    for i, (axis, record) in enumerate(tagged):
        injection = get_axis(axis).injection if inject else None
        where = f"record #{i} ({getattr(record, 'source', '') or axis} id={getattr(record, 'id', '')!r})"
        out.append(to_example(record, method, injection, where))
    return out


def load_axis_records(sources: Sequence[str], *, method: str, split: str, limit: int | None) -> list:
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
            records.extend(load_records(source, split=split, limit=limit).records)
    if not records:
        raise AxialError(f"no training records in {list(sources)} (split={split})")
    return records
