"""Dataset kinds: how one raw row (a dict) of each supported format becomes a typed record.

Every field is checked (present, right type, non-empty where it is required) and a problem raises
`RowError(field, message)`; the reader adds file and line. Prompt text (instruction, question, dialogue turns)
must be non-empty. Response text recorded from a model or a person may be empty, because the upstream data
contains such responses (text-davinci-003 returned nothing for two AlpacaEval prompts; HH-RLHF raters chose an
empty reply four times in the harmless test set) and dropping them would change win rates and counts: those
are kept and reported as notes. Columns a kind does not use go into `record.meta`, so nothing is dropped;
axial's own formats (sft / preference / qa / labeled) reject unknown fields instead, to catch typos.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from axial.data.records import (
    ROLES,
    LabeledResponseRecord,
    Message,
    PreferenceRecord,
    QARecord,
    Record,
    SFTRecord,
)


class RowError(Exception):
    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field, self.message = field, message


class Row:
    """One raw row with typed accessors that remember which fields were used (the rest become meta)."""

    def __init__(self, data: dict[str, Any], *, default_id: str, source: str):
        self.data, self.default_id, self.source = data, default_id, source
        self.used: set[str] = set()
        self.notes: list[tuple[str, str]] = []

    def note(self, field: str, message: str) -> None:
        self.notes.append((field, message))

    def _get(self, field: str, required: bool) -> Any:
        self.used.add(field)
        if field not in self.data:
            if required:
                raise RowError(field, "missing")
            return None
        value = self.data[field]
        if value is None and required:
            raise RowError(field, "missing (null)")
        return value

    def text(self, field: str, *, required: bool = True) -> str:
        value = self._get(field, required)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise RowError(field, f"expected a string, got {_type(value)}")
        if required and not value.strip():
            raise RowError(field, "is empty")
        return value

    def response(self, field: str, *, bool_as_text: bool = False) -> str:
        value = self._get(field, True)
        if bool_as_text and isinstance(value, bool):
            self.note(field, f"JSON boolean {str(value).lower()} read as the text '{value}' (kept)")
            return str(value)
        if not isinstance(value, str):
            raise RowError(field, f"expected a string, got {_type(value)}")
        if not value.strip():
            self.note(field, "empty response (kept)")
        return value

    def label(self, field: str) -> bool:
        value = self._get(field, True)
        if isinstance(value, bool):
            return value
        # CSV files hold booleans as text
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise RowError(field, f"expected true/false, got {value!r}")

    def choice(self, field: str, options: tuple[int, ...] = (0, 1)) -> int:
        value = self._get(field, True)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value not in options:
            raise RowError(field, f"expected one of {list(options)}, got {value!r}")
        return value

    def number(self, field: str) -> float:
        value = self._get(field, True)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise RowError(field, f"expected a finite number, got {value!r}")
        return float(value)

    def messages(self, field: str = "messages") -> list[Message]:
        value = self._get(field, True)
        if not isinstance(value, list) or not value:
            raise RowError(field, f"expected a non-empty list of {{role, content}} messages, got {_type(value)}")
        out = []
        for i, m in enumerate(value):
            where = f"{field}[{i}]"
            if not isinstance(m, dict) or set(m) != {"role", "content"}:
                raise RowError(where, f"expected {{'role', 'content'}}, got {m!r:.80}")
            if m["role"] not in ROLES:
                raise RowError(f"{where}.role", f"expected one of {list(ROLES)}, got {m['role']!r}")
            if not isinstance(m["content"], str) or not m["content"].strip():
                raise RowError(f"{where}.content", "expected a non-empty string")
            out.append({"role": m["role"], "content": m["content"]})
        if out[-1]["role"] != "user":
            raise RowError(field, f"the last message must be a user turn, got {out[-1]['role']!r}")
        return out

    def answer_list(self, field: str) -> list[str]:
        value = self._get(field, True)
        if isinstance(value, str):
            # As TruthfulQA's own split_multi_answer does: split on ';', strip, skip the empty pieces a
            # trailing ';' leaves (a few rows end with one).
            value = [a.strip() for a in value.split(";") if a.strip()]
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise RowError(field, f"expected a list of strings or a ';'-separated string, got {_type(value)}")
        if not value or any(not a.strip() for a in value):
            raise RowError(field, "needs at least one answer and no empty answers")
        return value

    def extras(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in self.used}

    def own_fields(self, *, axis: str | None) -> dict[str, Any]:
        """The optional id / source / axis / meta of axial's own formats; unknown fields are errors."""
        rid = self.text("id", required=False) or self.default_id
        source = self.text("source", required=False) or self.source
        rec_axis = self.text("axis", required=False) or axis
        meta = self._get("meta", False)
        meta = {} if meta is None else meta
        if not isinstance(meta, dict):
            raise RowError("meta", f"expected a mapping, got {_type(meta)}")
        unknown = sorted(self.extras())
        if unknown:
            raise RowError(unknown[0], "unknown field (axial's own formats allow only the record's fields)")
        return {"id": rid, "source": source, "axis": rec_axis, "meta": meta}


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _user(text: str) -> list[Message]:
    return [{"role": "user", "content": text}]


# HH-RLHF: "\n\nHuman: ...\n\nAssistant: ..."; role markers inside a turn without the blank line before them
# are part of the text (raters typed "Human:" in 39 turns of the harmless test set).
_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
_HH_ROLE = {"Human": "user", "Assistant": "assistant"}


def parse_hh_dialogue(text: str) -> tuple[list[Message], int]:
    """An HH-RLHF dialogue string as chat messages, and how many consecutive same-role turns were merged.

    Raises ValueError when the string is not a dialogue: it must start with "\\n\\nHuman:", end with an Assistant
    turn, and have no empty Human turn. Consecutive turns of one role (a handful in the raw data) are joined
    with a blank line, because chat templates expect alternating roles. The final Assistant turn may be empty.
    """
    if not text.startswith("\n\nHuman:"):
        raise ValueError(f"does not start with '\\n\\nHuman:' (starts {text[:30]!r})")
    parts = _HH_TURN.split(text)
    messages: list[Message] = []
    merged = 0
    for k, (role, content) in enumerate(zip(parts[1::2], parts[2::2], strict=True)):
        role, content = _HH_ROLE[role], content.strip()
        is_last = k == len(parts) // 2 - 1
        if not content and not (is_last and role == "assistant"):
            raise ValueError(f"turn {k + 1} ({role}) is empty")
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] = f"{messages[-1]['content']}\n\n{content}".strip()
            merged += 1
        else:
            messages.append({"role": role, "content": content})
    if messages[-1]["role"] != "assistant":
        raise ValueError("does not end with an Assistant turn")
    return messages, merged


# ---- converters: one per kind ---------------------------------------------------------------------------

def _alpaca(r: Row, axis: str | None) -> Record:
    instruction = r.text("instruction")
    extra_input = r.text("input", required=False)
    prompt = f"{instruction}\n\n{extra_input}" if extra_input.strip() else instruction
    return SFTRecord(_user(prompt), r.response("output"), axis=axis, id=r.default_id, source=r.source,
                     meta=r.extras())


def _alpaca_eval(r: Row, axis: str | None) -> Record:
    instruction, output = r.text("instruction"), r.response("output")
    meta = {"generator": r.text("generator"), "dataset": r.text("dataset", required=False)}
    return SFTRecord(_user(instruction), output, axis=axis, id=r.default_id, source=r.source,
                     meta=meta | r.extras())


def _alpaca_eval_annotations(r: Row, axis: str | None) -> Record:
    instruction = r.text("instruction")
    out1, out2 = r.response("output_1"), r.response("output_2")
    # AlpacaEval: 1 = output_1 preferred, 2 = output_2, weighted annotators give a float in between; 0 and 1.5
    # are draws (alpaca_eval's pairwise_to_winrate counts both as draws; in the GPT-4 annotations every 0 and
    # 1.5 is a pair of identical outputs). null = the annotator's answer could not be parsed: alpaca_eval leaves
    # such rows out of win rates, and so do axial's pairs, but the record is kept (and noted) so it is counted.
    if r.data.get("preference") is None and "preference" in r.data:
        r.used.add("preference")
        r.note("preference", "no valid preference label (null; kept, left out of pairs)")
        p, label = None, "none"
    else:
        p = r.number("preference")
        if p not in (0.0, 1.5) and not 1.0 <= p <= 2.0:
            raise RowError("preference", f"expected a number in [1, 2] (or 0 for a draw), got {p}")
        label = "tie" if p in (0.0, 1.5) else "output_2" if p > 1.5 else "output_1"
    chosen_output = 2 if label == "output_2" else 1
    chosen, rejected = (out2, out1) if chosen_output == 2 else (out1, out2)
    meta = {"preference": p, "chosen_output": chosen_output, "tie": label == "tie", "label": label}
    return PreferenceRecord(_user(instruction), chosen, rejected, axis=axis, id=r.default_id,
                            source=r.source, meta=meta | r.extras())


def _pandalm(r: Row, axis: str | None) -> Record:
    instruction = r.text("instruction", required=False)
    extra_input = r.text("input", required=False)
    prompt = "\n\n".join(t for t in (instruction, extra_input) if t.strip())
    if not prompt:
        raise RowError("instruction", "is empty (and so is input)")
    if not instruction.strip():
        # Upstream item 466 has instruction " " and input "Truthfulness": the input alone is the prompt.
        r.note("instruction", "blank instruction; the input alone is the prompt (kept)")
    # Six upstream responses are the JSON boolean true where the model answered "True" to a yes/no question.
    responses = (r.response("response1", bool_as_text=True), r.response("response2", bool_as_text=True))
    votes = [r.choice(f"annotator{i}", (0, 1, 2)) for i in (1, 2, 3)]
    top, count = Counter(votes).most_common(1)[0]
    # PandaLM's label is the majority of three annotators: 0 = tie, 1 = response1, 2 = response2. No majority
    # (one vote each) is also a tie; the shared test set has none, but other files might.
    majority = top if count >= 2 else 0
    chosen_response = 2 if majority == 2 else 1
    chosen, rejected = (responses[1], responses[0]) if chosen_response == 2 else responses
    meta = {"annotators": votes, "majority": majority, "agreement": count, "tie": majority == 0,
            "chosen_response": chosen_response,
            "label": {0: "tie", 1: "response1", 2: "response2"}[majority]}
    return PreferenceRecord(_user(prompt), chosen, rejected, axis=axis, id=r.default_id, source=r.source,
                            meta=meta | r.extras())


def _hh_rlhf(r: Row, axis: str | None) -> Record:
    dialogues = {}
    for side in ("chosen", "rejected"):
        try:
            dialogues[side], merged = parse_hh_dialogue(r.text(side))
        except ValueError as e:
            raise RowError(side, f"malformed HH dialogue: {e}") from None
        if merged:
            r.note(side, f"{merged} consecutive same-role turn(s) merged")
    chosen, rejected = dialogues["chosen"], dialogues["rejected"]
    if chosen[:-1] != rejected[:-1]:
        k = next((i for i, (a, b) in enumerate(zip(chosen[:-1], rejected[:-1], strict=False)) if a != b),
                 min(len(chosen), len(rejected)) - 1)
        raise RowError("rejected", f"dialogue differs from 'chosen' before the final Assistant turn "
                                   f"(at message {k + 1}); expected a shared prefix")
    for side, turns in dialogues.items():
        if not turns[-1]["content"]:
            r.note(side, "empty final Assistant turn (kept)")
    return PreferenceRecord(chosen[:-1], chosen[-1]["content"], rejected[-1]["content"], axis=axis,
                            id=r.default_id, source=r.source, meta=r.extras())


def _beavertails(r: Row, axis: str | None) -> Record:
    prompt, response, is_safe = r.text("prompt"), r.response("response"), r.label("is_safe")
    return LabeledResponseRecord(_user(prompt), response, is_safe, axis=axis, id=r.default_id,
                                 source=r.source, meta=r.extras())


def _pku_saferlhf(r: Row, axis: str | None) -> Record:
    prompt = r.text("prompt")
    responses = (r.response("response_0"), r.response("response_1"))
    safer, better = r.choice("safer_response_id"), r.choice("better_response_id")
    meta = {"safer_response_id": safer, "better_response_id": better, "chosen_is_better": safer == better}
    return PreferenceRecord(_user(prompt), responses[safer], responses[1 - safer], axis=axis,
                            id=r.default_id, source=r.source, meta=meta | r.extras())


# The TruthfulQA CSV's column names; the hub copy (truthfulqa/truthful_qa, "generation") uses the snake_case keys.
_TQA_CSV = {"question": "Question", "best_answer": "Best Answer", "correct_answers": "Correct Answers",
            "incorrect_answers": "Incorrect Answers", "category": "Category", "type": "Type", "source": "Source"}


def _truthfulqa(r: Row, axis: str | None) -> Record:
    n = _TQA_CSV if "Question" in r.data else {k: k for k in _TQA_CSV}
    question, best = r.text(n["question"]), r.text(n["best_answer"])
    correct, incorrect = r.answer_list(n["correct_answers"]), r.answer_list(n["incorrect_answers"])
    category, qtype = r.text(n["category"], required=False), r.text(n["type"], required=False)
    meta = {"reference": r.text(n["source"], required=False)} | r.extras()
    return QARecord(question, best, correct, incorrect, category=category, type=qtype, axis=axis,
                    id=r.default_id, source=r.source, meta=meta)


def _sft(r: Row, axis: str | None) -> Record:
    messages, response = r.messages(), r.response("response")
    return SFTRecord(messages, response, **r.own_fields(axis=axis))


def _preference(r: Row, axis: str | None) -> Record:
    messages, chosen, rejected = r.messages(), r.response("chosen"), r.response("rejected")
    return PreferenceRecord(messages, chosen, rejected, **r.own_fields(axis=axis))


def _qa(r: Row, axis: str | None) -> Record:
    question, best = r.text("question"), r.text("best_answer")
    correct, incorrect = r.answer_list("correct_answers"), r.answer_list("incorrect_answers")
    category, qtype = r.text("category", required=False), r.text("type", required=False)
    return QARecord(question, best, correct, incorrect, category=category, type=qtype,
                    **r.own_fields(axis=axis))


def _labeled(r: Row, axis: str | None) -> Record:
    messages, response, label = r.messages(), r.response("response"), r.label("label")
    return LabeledResponseRecord(messages, response, label, **r.own_fields(axis=axis))


@dataclass(frozen=True)
class Kind:
    name: str
    record_type: type
    convert: Callable[[Row, str | None], Record]
    signature: frozenset[str]  # fields whose presence identifies the kind when it is not given
    axis: str | None  # the axis the upstream dataset measures; None for axial's own formats
    description: str


    excludes: frozenset[str] = frozenset()  # fields whose presence rules the kind out

    def matches(self, keys: set[str]) -> bool:
        return self.signature <= keys and not self.excludes & keys


def _kind(name, record_type, convert, signature, axis, description, excludes=()) -> Kind:
    return Kind(name, record_type, convert, frozenset(signature), axis, description, frozenset(excludes))


# Ordered most specific first: detection takes the first kind whose signature fields are all present (and
# none of its excluded fields).
KINDS: dict[str, Kind] = {k.name: k for k in (
    _kind("alpaca_eval_annotations", PreferenceRecord, _alpaca_eval_annotations,
          {"instruction", "output_1", "output_2", "preference"}, "helpful",
          "AlpacaEval annotations JSON/JSONL(.gz): instruction, output_1, output_2, preference (1 or 2, float; "
          "0 / 1.5 draw; null = no valid label)"),
    _kind("pandalm", PreferenceRecord, _pandalm,
          {"instruction", "response1", "response2", "annotator1", "annotator2", "annotator3"}, "helpful",
          "PandaLM test set JSON: instruction, input, response1, response2, annotator1..3 (0 tie, 1, 2); "
          "chosen = the majority vote"),
    _kind("pku_saferlhf", PreferenceRecord, _pku_saferlhf,
          {"prompt", "response_0", "response_1", "safer_response_id"}, "harmless",
          "PKU-SafeRLHF: prompt, response_0, response_1, safer_response_id, better_response_id"),
    _kind("beavertails", LabeledResponseRecord, _beavertails, {"prompt", "response", "is_safe"}, "harmless",
          "BeaverTails: prompt, response, is_safe"),
    _kind("alpaca_eval", SFTRecord, _alpaca_eval, {"instruction", "output", "generator"}, "helpful",
          "AlpacaEval model_outputs JSON: instruction, output, generator, dataset"),
    _kind("alpaca", SFTRecord, _alpaca, {"instruction", "output"}, "helpful",
          "Alpaca JSON: instruction, input (optional), output"),
    _kind("truthfulqa", QARecord, _truthfulqa, {"Question", "Best Answer"}, "honest",
          "TruthfulQA CSV: Type, Category, Question, Best Answer, Correct Answers, Incorrect Answers, Source"),
    _kind("truthfulqa_hf", QARecord, _truthfulqa,
          {"question", "best_answer", "correct_answers", "incorrect_answers", "source"}, "honest",
          "TruthfulQA from the hub (truthfulqa/truthful_qa, generation): the CSV's fields in snake_case",
          excludes={"axis", "id", "meta"}),
    _kind("qa", QARecord, _qa, {"question", "best_answer"}, None, "axial QARecord JSONL"),
    _kind("preference", PreferenceRecord, _preference, {"messages", "chosen", "rejected"}, None,
          "axial PreferenceRecord JSONL"),
    _kind("hh_rlhf", PreferenceRecord, _hh_rlhf, {"chosen", "rejected"}, "harmless",
          "HH-RLHF: chosen, rejected ('\\n\\nHuman: ... \\n\\nAssistant: ...' dialogues)"),
    _kind("labeled", LabeledResponseRecord, _labeled, {"messages", "response", "label"}, None,
          "axial LabeledResponseRecord JSONL"),
    _kind("sft", SFTRecord, _sft, {"messages", "response"}, None, "axial SFTRecord JSONL"),
)}


def detect_kind(row: dict[str, Any]) -> Kind | None:
    keys = set(row)
    return next((k for k in KINDS.values() if k.matches(keys)), None)
