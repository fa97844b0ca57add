import csv
import json

import pytest

from axial.data.splits import hash_split
from axial.errors import AxialError
from axial.rewards.base import Judge
from axial.rewards.bradley_terry import prompt_hash
from axial.rewards.features import Item
from axial.rewards.generative import HFGenerativeJudge
from axial.rewards.pairs import Pair
from axial.rewards.validate import (
    SCHEMA,
    SUBSETS,
    agreement_table,
    format_validation,
    headline,
    validate_judge,
    validate_judges,
    write_validation,
)


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


def _pair(prompt: str, chosen: str, rejected: str) -> Pair:
    msgs = [{"role": "user", "content": prompt}]
    return Pair(Item.of(msgs, chosen), Item.of(msgs, rejected), prompt)


def test_agreement_table_subsets_and_paired_difference_by_hand():
    pairs = [
        _pair("p0", "a" * 100, "b" * 10),   # longer wins, unbalanced
        _pair("p1", "a" * 10, "b" * 100),   # shorter wins, unbalanced
        _pair("p2", "a" * 95, "b" * 100),   # shorter wins, balanced
        _pair("p3", "a" * 100, "b" * 90),   # longer wins, balanced
        _pair("p4", "a" * 50, "b" * 50),    # equal lengths
    ]
    margins = [1.0, 1.0, 1.0, -1.0, 0.0]   # the judge gets 0, 1, 2 right, 3 wrong, ties on 4
    t = agreement_table(margins, pairs)
    assert {k: t[k]["n"] for k in SUBSETS} == {"all": 5, "unequal_length": 4, "length_balanced": 2,
                                               "shorter_wins": 2}
    assert t["all"]["judge"]["value"] == pytest.approx(3.5 / 5)
    assert t["all"]["length"]["value"] == pytest.approx(2.5 / 5)
    assert t["all"]["judge_minus_length"]["value"] == pytest.approx(1 / 5)
    assert t["unequal_length"]["judge"]["value"] == pytest.approx(3 / 4)
    assert t["length_balanced"]["judge"]["value"] == 0.5 and t["length_balanced"]["length"]["value"] == 0.5
    assert t["shorter_wins"]["judge"]["value"] == 1.0 and t["shorter_wins"]["length"]["value"] == 0.0
    lo, hi = t["all"]["judge_minus_length"]["ci95"]
    assert lo <= 0.2 <= hi


def _pandalm(path, n=30):
    rows = []
    for i in range(n):
        # the label prefers the longer answer on 2 of every 3 prompts
        long, short = f"a careful, complete answer number {i}", f"ok {i}"
        first_better = i % 3 != 0
        rows.append({"idx": i, "instruction": f"task {i}", "input": "", "response1": long, "response2": short,
                     "annotator1": 1 if first_better else 2, "annotator2": 1 if first_better else 2,
                     "annotator3": 0})
    rows.append({"idx": n, "instruction": "tied task", "input": "", "response1": "x", "response2": "y",
                 "annotator1": 0, "annotator2": 0, "annotator3": 1})
    path.write_text(json.dumps(rows))
    return path


def test_validate_on_all_of_an_unseen_source_with_length_baseline(tmp_path):
    src = _pandalm(tmp_path / "pandalm.json")
    result = validate_judge(LengthJudge("helpful"), "helpful", source=str(src), split="all")
    assert result["n"] == 30 and result["dataset"]["excluded"] == {"tie": 1}
    assert result["dataset"]["labels"] == "human majority of 3 (PandaLM)"
    assert result["value"] == pytest.approx(20 / 30) == result["subsets"]["all"]["length"]["value"]
    assert result["subsets"]["all"]["judge_minus_length"]["value"] == 0
    assert result["subsets"]["shorter_wins"]["judge"]["value"] == 0.0
    assert result["schema"] == SCHEMA and "split=all" in result["data"]
    with pytest.raises(AxialError, match="split must be"):
        validate_judge(LengthJudge("helpful"), "helpful", source=str(src), split="train")


def test_document_json_markdown_png_and_headline(tmp_path):
    hh = _hh_file(tmp_path / "hh.jsonl")
    pl = _pandalm(tmp_path / "pandalm.json")
    judges = [LengthJudge("helpful"), ShortJudge("helpful")]
    doc = validate_judges(judges, "helpful", [(str(hh), "test"), (str(pl), "all")])
    assert [(r["judge"]["name"], r["data"].split(" ")[1]) for r in doc["results"]] == [
        ("length", "(split=test)"), ("length", "(split=all)"), ("short", "(split=test)"), ("short", "(split=all)")]
    paths = write_validation(doc, tmp_path / "out" / "validation.json")
    assert [p.suffix for p in paths] == [".json", ".md", ".png"] and all(p.stat().st_size for p in paths)
    md = paths[1].read_text()
    assert "| `short` | label prefers the shorter response |" in md and "human majority of 3" in md
    # the human-labelled result is the one a report quotes
    head = headline(json.loads(paths[0].read_text()), "short")
    assert head["labels"] == "human majority of 3 (PandaLM)" and head["value"] == pytest.approx(10 / 30)
    assert head["length_baseline"] == pytest.approx(20 / 30)
    assert headline(doc, "nobody") is None
    with pytest.raises(AxialError, match=".json"):
        write_validation(doc, tmp_path / "validation.md")


class ShortJudge(LengthJudge):
    name = "short"

    def score(self, prompts, responses):
        return [-float(len(r)) for r in responses]


def test_a_reward_model_is_never_validated_on_its_training_prompts(tmp_path):
    src = _pandalm(tmp_path / "pandalm.json")
    judge = LengthJudge("helpful")
    judge.train_prompt_hashes = {prompt_hash("task 3")}
    with pytest.raises(AxialError, match="1 prompt\\(s\\).*training data"):
        validate_judge(judge, "helpful", source=str(src), split="all")

    class Trained(LengthJudge):
        config = type("C", (), {"data": str(src)})()

    with pytest.raises(AxialError, match="split=test only"):
        validate_judge(Trained("helpful"), "helpful", source=str(src), split="all")


def _annotations(path, n_prompts=20, models=("m1", "m2", "m3", "m4")):
    """AlpacaEval GPT-4 annotation records: several pairs per instruction."""
    import gzip

    rows = [{"instruction": f"instruction {i}", "output_1": f"reference {i}", "output_2": f"{m} says {i}",
             "generator_1": "ref", "generator_2": m, "annotator": "gpt4", "preference": 2}
            for i in range(n_prompts) for m in models]
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    return path


def test_max_pairs_per_prompt_per_source(tmp_path):
    gpt4 = str(_annotations(tmp_path / "a.jsonl.gz"))  # 20 prompts x 4 pairs each
    pl = str(_pandalm(tmp_path / "pandalm.json"))
    doc = validate_judges([LengthJudge("helpful")], "helpful", [(pl, "all"), (gpt4, "all")],
                          max_pairs_per_prompt=[None, 1])
    assert [r["n"] for r in doc["results"]] == [30, 20]
    assert [r["max_pairs_per_prompt"] for r in doc["results"]] == [None, 1]
    one_for_all = validate_judges([LengthJudge("helpful")], "helpful", [(pl, "all"), (gpt4, "all")],
                                  max_pairs_per_prompt=2)
    assert [r["n"] for r in one_for_all["results"]] == [30, 40]
    with pytest.raises(AxialError, match="2 sources"):
        validate_judges([LengthJudge("helpful")], "helpful", [(pl, "all"), (gpt4, "all")],
                        max_pairs_per_prompt=[1])
