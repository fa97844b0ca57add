"""Every record file under ../shared/data parses with zero invalid records (skipped when the folder is absent)."""

import re
from collections import Counter
from pathlib import Path

import pytest

from axial.data import builtin_axes_available, builtin_axis_set, load_records
from axial.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

# path, kind, records, notes (empty responses kept / merged turns, see axial.data.kinds), records whose content
# (prompt and responses, not labels or generators: axial.data.records.content_key) repeats an earlier record
FILES = [
    ("truthfulqa/TruthfulQA.csv", "truthfulqa", 817, 0, 0),
    ("hh-rlhf/harmless-base_test_dev.jsonl", "hh_rlhf", 1156, 8, 0),
    ("alpaca_eval/text_davinci_003_model_outputs.json", "alpaca_eval", 805, 2, 0),
    ("alpaca_eval/gpt4_1106_preview_model_outputs.json", "alpaca_eval", 805, 0, 0),
    ("alpaca_eval/text_davinci_003_vs_gpt4_1106_preview_weighted_gpt4_turbo_annotations.json",
     "alpaca_eval_annotations", 805, 2, 0),
    ("stanford_alpaca/alpaca_5000.json", "alpaca", 5000, 2, 0),
    # 61 null preferences (no valid label) + 10 empty responses. Same content: 805 are falcon-40b-instruct's
    # annotations present twice; the rest are the same two texts compared again under other generators' names
    # (load_pairs keeps those as separate labelled comparisons and drops only records identical in every field).
    ("alpaca_eval/gpt4_annotations/annotations_alpaca_eval_gpt4.jsonl.gz", "alpaca_eval_annotations", 42665, 71,
     1219),
    # 54 empty responses + 6 boolean `true` responses + 1 blank instruction (item 466). Same content: two models
    # gave the same answers to one instruction; each comparison was labelled by the annotators.
    ("pandalm/testset-v1.json", "pandalm", 999, 61, 134),
]
# Not records: licences that travel with the data.
OTHER = {"README.md", "pandalm/LICENSE"}
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
    assert present - OTHER == {f[0] for f in FILES} | set(NOT_RECORDS)


@pytest.mark.parametrize("rel, kind, n, n_notes, n_same_content", FILES)
def test_file_parses_with_zero_errors(shared, rel, kind, n, n_notes, n_same_content):
    res = load_records(shared / rel)
    assert (res.kind, len(res), res.n_invalid, len(res.notes), res.n_duplicates) == (kind, n, 0, n_notes,
                                                                                       n_same_content)


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


def test_gpt4_annotation_labels_are_all_accounted_for(shared):
    res = load_records(shared / FILES[6][0])
    labels = Counter(r.meta["label"] for r in res.records)
    # The data README's counts: 33,482 prefer output_2, 8,907 output_1; the other 276 are draws (preference 0 or
    # 1.5: identical outputs) or have no valid label (null).
    assert labels == {"output_2": 33482, "output_1": 8907, "tie": 215, "none": 61}
    assert all(r.chosen == r.rejected for r in res.records if r.meta["label"] == "tie")


def test_pandalm_majorities_and_length_baseline(shared):
    # The figures the issue states: 887 non-tie pairs of unequal length, "longer wins" agrees on 67.5%, and on
    # 60% of the 193 whose lengths differ by < 20% of the longer.
    res = load_records(shared / FILES[7][0])
    assert Counter(r.meta["label"] for r in res.records) == {"response2": 472, "response1": 422, "tie": 105}
    pairs = [(len(r.chosen), len(r.rejected)) for r in res.records if not r.meta["tie"]]
    unequal = [(c, x) for c, x in pairs if c != x]
    balanced = [(c, x) for c, x in unequal if abs(c - x) < 0.2 * max(c, x)]
    assert (len(unequal), len(balanced)) == (887, 193)
    assert round(sum(c > x for c, x in unequal) / 887, 3) == 0.675
    assert round(sum(c > x for c, x in balanced) / 193, 2) == 0.60
