import csv
import json

import pytest

from axial.data.splits import hash_split
from axial.errors import AxialError
from axial.rewards.base import Judge
from axial.rewards.generative import HFGenerativeJudge
from axial.rewards.validate import format_validation, validate_judge


class LengthJudge(Judge):
    """Prefers longer responses: a judge whose validation result we can compute by hand."""

    name, kind = "length", "test"

    def __init__(self, axis):
        self.axis = axis

    def score(self, prompts, responses):
        return [float(len(r)) for r in responses]


def _hh_file(path, n=40):
    with path.open("w") as f:
        for i in range(n):
            prefix = f"\n\nHuman: question number {i}?\n\nAssistant:"
            # chosen is the longer answer for even i, the shorter for odd i
            long, short = " a long and careful answer", " no"
            chosen, rejected = (long, short) if i % 2 == 0 else (short, long)
            f.write(json.dumps({"chosen": prefix + chosen, "rejected": prefix + rejected}) + "\n")
    return path


def test_pair_accuracy_on_test_split_only(tmp_path):
    src = _hh_file(tmp_path / "hh.jsonl")
    result = validate_judge(LengthJudge("harmless"), "harmless", source=str(src))
    test_ids = [i for i in range(40) if hash_split(f"question number {i}?") == "test"]
    expected = sum(1 for i in test_ids if i % 2 == 0) / len(test_ids)
    assert result["n"] == len(test_ids) == result["n_groups"]
    assert result["value"] == pytest.approx(expected)
    assert result["ci95"][0] <= expected <= result["ci95"][1]
    assert result["baselines"]["longer_wins"]["value"] == pytest.approx(expected)
    assert "split=test" in result["data"] and "harmless" in format_validation(result)


def test_limit_takes_a_deterministic_subset(tmp_path):
    src = str(_hh_file(tmp_path / "hh.jsonl"))
    a = validate_judge(LengthJudge("harmless"), "harmless", source=src, limit=5)
    b = validate_judge(LengthJudge("harmless"), "harmless", source=src, limit=5)
    assert a["n"] == 5 and a["value"] == b["value"]


def test_truthfulqa_pairs_are_clustered_by_question(tmp_path):
    src = tmp_path / "tqa.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers", "Source"])
        for i in range(30):
            w.writerow(["Adversarial", "Misc", f"Is claim {i} true?", "It is false in every careful study",
                        "It is false in every careful study; No", "Yes; It is true", "x"])
    judge = LengthJudge("honest")
    result = validate_judge(judge, "honest", source=str(src))
    assert result["n"] == 4 * result["n_groups"]  # 2 correct x 2 incorrect per question
    # the long correct answer beats both incorrect ones; "No" is shorter than both: (1 + 1 + 0 + 0) / 4
    assert result["value"] == pytest.approx(0.5)
    assert judge.validation["value"] == result["value"]


def test_generative_judge_validation_runs(tiny, tmp_path):
    src = _hh_file(tmp_path / "hh.jsonl", n=12)
    result = validate_judge(HFGenerativeJudge("tiny", axis="helpful", loaded=tiny), "helpful", source=str(src))
    assert result["method"].startswith("compare") and 0 <= result["value"] <= 1


def test_axis_mismatch_and_missing_default(monkeypatch):
    with pytest.raises(AxialError, match="judges axis 'honest'"):
        validate_judge(LengthJudge("honest"), "harmless", source="x.jsonl")
    monkeypatch.delenv("AXIAL_DATA", raising=False)
    with pytest.raises(AxialError, match="AXIAL_DATA"):
        validate_judge(LengthJudge("harmless"), "harmless")
