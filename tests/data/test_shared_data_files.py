"""Every record file under ../shared/data parses with zero invalid records (skipped when the folder is absent)."""

import re
from pathlib import Path

import pytest

from axial.data import builtin_axes_available, builtin_axis_set, load_records
from axial.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

# path, kind, records, notes (empty responses kept / merged turns, see axial.data.kinds)
FILES = [
    ("truthfulqa/TruthfulQA.csv", "truthfulqa", 817, 0),
    ("hh-rlhf/harmless-base_test_dev.jsonl", "hh_rlhf", 1156, 8),
    ("alpaca_eval/text_davinci_003_model_outputs.json", "alpaca_eval", 805, 2),
    ("alpaca_eval/gpt4_1106_preview_model_outputs.json", "alpaca_eval", 805, 0),
    ("alpaca_eval/text_davinci_003_vs_gpt4_1106_preview_weighted_gpt4_turbo_annotations.json",
     "alpaca_eval_annotations", 805, 2),
    ("stanford_alpaca/alpaca_5000.json", "alpaca", 5000, 2),
]
# Leaderboard tables are results, not records: they must be refused, not misread.
NOT_RECORDS = [
    "alpaca_eval/alpaca_eval_1_gpt4_leaderboard.csv",
    "alpaca_eval/alpaca_eval_2_weighted_gpt4_turbo_leaderboard.csv",
    "alpaca_eval/evaluators_leaderboard.csv",
]

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def shared():
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present (users' checkouts lack it)")
    return SHARED


def test_every_file_is_covered(shared):
    present = {p.relative_to(shared).as_posix() for p in shared.rglob("*") if p.is_file()}
    assert present - {"README.md"} == {f[0] for f in FILES} | set(NOT_RECORDS)


@pytest.mark.parametrize("rel, kind, n, n_notes", FILES)
def test_file_parses_with_zero_errors(shared, rel, kind, n, n_notes):
    res = load_records(shared / rel)
    assert (res.kind, len(res), res.n_invalid, len(res.notes), res.n_duplicates) == (kind, n, 0, n_notes, 0)


@pytest.mark.parametrize("rel", NOT_RECORDS)
def test_leaderboards_are_refused(shared, rel):
    with pytest.raises(DataError, match="cannot tell the dataset kind"):
        load_records(shared / rel)


def test_truthfulqa_halves(shared):
    path = shared / "truthfulqa/TruthfulQA.csv"
    train, test = load_records(path, split="train"), load_records(path, split="test")
    assert (len(train), len(test)) == (397, 420)
    assert not {r.question for r in train} & {r.question for r in test}


def test_alpaca_eval_files_split_the_same_way(shared):
    # The reference outputs and the judge annotations hold the same 805 instructions: each must land on the
    # same side of the split, or a judge would be validated on prompts a model was tuned on.
    outputs = load_records(shared / FILES[2][0], split="test")
    annotations = load_records(shared / FILES[4][0], split="test")
    assert [r.prompt for r in outputs] == [r.prompt for r in annotations]


def _content_words(text: str) -> set[str]:
    stop = {"the", "and", "you", "your", "what", "why", "how", "are", "can", "for", "does", "did", "that",
            "with", "from", "happens", "happen", "this", "there", "they", "will", "would", "should", "have"}
    return {w[:5] for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in stop}


def test_builtin_sets_do_not_repeat_truthfulqa_questions(shared):
    # The honest set was written to avoid the misconceptions TruthfulQA asks about (so an expert trained on it
    # can be scored on TruthfulQA); this lexical guard catches a near-copy added later, not a paraphrase.
    questions = [_content_words(r.question) for r in load_records(shared / FILES[0][0]).records]
    for axis in builtin_axes_available():
        for record in builtin_axis_set(axis):
            words = _content_words(record.prompt)
            overlap = max(len(words & q) / len(words | q) for q in questions)
            assert overlap < 0.5, (record.id, record.prompt)
