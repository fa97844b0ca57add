"""Typed records for the three data shapes axial needs (plus labelled responses for safety classifiers).

Prompts are always chat messages (a list of {"role", "content"}), so multi-turn HH-RLHF dialogues and
single instructions go through the same chat template downstream.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

Message = dict[str, str]
ROLES = ("system", "user", "assistant")


@dataclass
class SFTRecord:
    """An instruction (as chat messages ending with a user turn) and a good response."""

    messages: list[Message]
    response: str
    axis: str | None = None
    id: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    kind = "sft"

    @property
    def prompt(self) -> str:
        """The last user turn as plain text."""
        return self.messages[-1]["content"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PreferenceRecord:
    """A prompt (chat messages ending with a user turn) with a chosen and a rejected response."""

    messages: list[Message]
    chosen: str
    rejected: str
    axis: str | None = None
    id: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    kind = "preference"

    @property
    def prompt(self) -> str:
        return self.messages[-1]["content"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QARecord:
    """A question with reference answer sets (TruthfulQA shape)."""

    question: str
    best_answer: str
    correct_answers: list[str]
    incorrect_answers: list[str]
    category: str = ""
    type: str = ""
    axis: str | None = "honest"
    id: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    kind = "qa"

    @property
    def messages(self) -> list[Message]:
        return [{"role": "user", "content": self.question}]

    @property
    def prompt(self) -> str:
        return self.question

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LabeledResponseRecord:
    """A prompt and one response with a safety label (BeaverTails shape: is_safe)."""

    messages: list[Message]
    response: str
    label: bool
    axis: str | None = "harmless"
    id: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    kind = "labeled"

    @property
    def prompt(self) -> str:
        return self.messages[-1]["content"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Record = SFTRecord | PreferenceRecord | QARecord | LabeledResponseRecord


def content_key(record) -> str:
    """What makes two records the same example: their kind and every field except id, source and meta
    (which differ between copies of one example in different files or rows)."""
    fields = {k: v for k, v in record.to_dict().items() if k not in ("id", "source", "meta")}
    payload = json.dumps([record.kind, fields], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
