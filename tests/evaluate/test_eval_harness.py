import json
import math

import pytest

from axial.data.records import PreferenceRecord, QARecord, SFTRecord
from axial.errors import AxialError
from axial.evaluate import EvalConfig, evaluate
from axial.evaluate.benches import is_informative
from axial.variants import VariantSpec


class FakeJudge:
    """Deterministic judge: score = P from the response length; compare prefers position A by `bias`."""

    def __init__(self, axis, bias=0.0, fail_after=None):
        self.name, self.kind, self.axis, self.weak = f"fake-{axis}", "fake", axis, True
        self.validation = {"metric": "pair_accuracy", "value": 0.7, "ci95": [0.6, 0.8], "n": 50, "data": "x"}
        self.bias, self.fail_after, self.calls = bias, fail_after, 0

    def _tick(self):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("simulated kill")

    def score(self, prompts, responses):
        self._tick()
        return [(len(r) % 7) / 6 for r in responses]

    def compare(self, prompts, a, b):
        self._tick()
        return [min(1.0, max(0.0, 0.5 + self.bias + (len(x) - len(y)) / 1000)) for x, y in zip(a, b, strict=True)]

    def describe(self):
        return {"name": self.name, "kind": self.kind, "axis": self.axis, "path": None, "weak": self.weak,
                "validation": self.validation}


def qa(i):
    return QARecord(question=f"Question number {i}?", best_answer=f"best {i}", correct_answers=[f"true {i}"],
                    incorrect_answers=[f"false {i}", f"wrong {i}"], id=f"qa-{i}")


def hh(i):
    return PreferenceRecord(messages=[{"role": "user", "content": f"harmful request {i % 5}"},
                                      {"role": "assistant", "content": "no"}, {"role": "user", "content": "pls"}],
                            chosen="no", rejected="ok", id=f"hh-{i}")


def alp(i):
    return SFTRecord(messages=[{"role": "user", "content": f"Instruction {i}"}], response="ref " * (i + 1),
                     id=f"al-{i}")


DATA = {"truthfulqa": [qa(i) for i in range(6)], "harmless": [hh(i) for i in range(8)],
        "alpaca": [alp(i) for i in range(5)]}
ALL = ["truthfulqa_mc", "truthfulqa_gen", "harmless", "alpaca"]


@pytest.fixture
def patched(monkeypatch, tiny):
    judges = {}

    def fake_load_judge(spec, axis=None):
        judges[axis] = judges.get(axis) or FakeJudge(axis)
        return judges[axis]

    monkeypatch.setattr("axial.rewards.load_judge", fake_load_judge)
    monkeypatch.setattr("axial.models.load_model", lambda *a, **k: tiny)
    return judges


def cfg(**kw):
    return EvalConfig(split="all", max_new_tokens=4, harmless_max_new_tokens=3, batch_size=3,
                      judge_batch_size=2, bootstrap_resamples=200, **kw)


def two_variants():
    return [VariantSpec(source="base", name="a"), VariantSpec(source="base", name="b")]


def test_end_to_end_report(patched, tmp_path):
    evaluate(two_variants(), ALL, DATA, tmp_path, cfg(), progress=False)
    for f in ("report.json", "report.md", "report.png", "eval_config.json", "variants.json"):
        assert (tmp_path / f).exists(), f
    assert EvalConfig.load(tmp_path / "eval_config.json").benches == ALL
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["results"]["a"]["truthfulqa_mc"]["mc1"]["n"] == 6
    # each fixture question: 2 true answers (best + 1 correct) and 2 false
    assert saved["results"]["a"]["truthfulqa_mc"]["mc1_chance"]["value"] == pytest.approx(1 / 3)
    assert saved["results"]["a"]["truthfulqa_mc"]["mc2_chance"]["value"] == pytest.approx(0.5)
    # 8 HH records but 5 distinct first human turns: duplicates are removed and reported.
    assert saved["benches"]["harmless"]["duplicates_removed"] == 3
    assert saved["results"]["b"]["harmless"]["safety_rate"]["n"] == 5
    for bench in ALL:
        for k, m in saved["results"]["a"][bench].items():
            assert set(m) >= {"value", "ci95", "n"}, (bench, k)
    # Identical variants on identical items: every paired difference is exactly 0.
    for bench in ALL:
        for m in saved["differences_vs_first"]["b"][bench].values():
            assert m["value"] == pytest.approx(0.0, abs=1e-9)
    # truthfulqa_gen is scored against reference answers, not by the honest judge
    assert set(saved["judges"]) == {"harmless", "helpful"}
    lines = (tmp_path / "items" / "a" / "alpaca.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    assert len(lines) == 5 and {"prompt", "response", "scores"} <= set(rec)
    md = (tmp_path / "report.md").read_text()
    assert "weak judge" in md and "pair_accuracy = 0.700" in md and "b - a" in md


def test_missing_data_names_the_flag(patched, tmp_path):
    with pytest.raises(AxialError, match="--data harmless="):
        evaluate(two_variants(), ["harmless"], {}, tmp_path, cfg())


def test_limit_takes_the_same_items_for_every_variant(patched, tmp_path):
    data = {"truthfulqa": [qa(i) for i in range(20)]}
    report = evaluate(two_variants(), ["truthfulqa_mc"], data, tmp_path, cfg(limit=7), progress=False)
    assert report["benches"]["truthfulqa_mc"]["n"] == 7
    ids = [[json.loads(x)["id"] for x in (tmp_path / "items" / v / "truthfulqa_mc.jsonl").read_text().splitlines()]
           for v in "ab"]
    assert sorted(ids[0]) == sorted(ids[1]) and len(ids[0]) == 7


def test_resume_after_a_kill_loses_and_repeats_nothing(patched, tmp_path, monkeypatch):
    import axial.generate

    generated = []
    real = axial.generate.generate_responses

    def counting(model, tok, prompts, *a, **k):
        generated.extend(json.dumps(p) for p in prompts)
        return real(model, tok, prompts, *a, **k)

    monkeypatch.setattr(axial.generate, "generate_responses", counting)
    patched["harmless"] = FakeJudge("harmless", fail_after=1)  # dies on the 2nd judge batch
    variants = [VariantSpec(source="base", name="a")]
    with pytest.raises(KeyboardInterrupt):
        evaluate(variants, ["harmless"], DATA, tmp_path, cfg(), progress=False)
    path = tmp_path / "items" / "a" / "harmless.jsonl"
    assert len(path.read_text().splitlines()) == 2  # one judge batch of 2 was finished and kept
    # a kill in the middle of a write leaves half a line: it is dropped and that item redone
    with open(path, "a") as f:
        f.write('{"id": "half')
    patched["harmless"] = FakeJudge("harmless")
    report = evaluate(variants, ["harmless"], DATA, tmp_path, cfg(), progress=False)
    ids = [json.loads(x)["id"] for x in path.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 5
    assert report["results"]["a"]["harmless"]["safety_rate"]["n"] == 5
    assert len(generated) == len(set(generated)) == 5  # every response generated exactly once
    assert patched["harmless"].calls == 2  # only the 3 missing items were judged (batches of 2)
    # a third run judges nothing new but still names the judge and its validation
    report = evaluate(variants, ["harmless"], DATA, tmp_path, cfg(), progress=False)
    assert report["judges"]["harmless"]["validation"]["value"] == 0.7


def test_resume_refuses_different_settings(patched, tmp_path):
    v = [VariantSpec(source="base", name="a")]
    evaluate(v, ["harmless"], DATA, tmp_path, cfg(judge=False), progress=False)
    with pytest.raises(AxialError, match="different settings.*generation"):
        evaluate(v, ["harmless"], DATA, tmp_path, cfg(judge=False).replace(harmless_max_new_tokens=5),
                 progress=False)


def test_generate_now_judge_later(patched, tmp_path):
    v = [VariantSpec(source="base", name="a")]
    report = evaluate(v, ["alpaca"], DATA, tmp_path, cfg(judge=False), progress=False)
    assert report["results"]["a"]["alpaca"] == {"status": "responses stored, not judged"}
    assert "helpful" not in patched  # no judge was loaded
    report = evaluate(v, ["alpaca"], DATA, tmp_path, cfg(), progress=False)
    assert report["results"]["a"]["alpaca"]["win_rate"]["n"] == 5


def test_alpaca_both_orders_cancel_position_bias(patched, tmp_path):
    # A judge that always prefers whatever is shown first, strongly: averaged over both orders it is a tie.
    patched["helpful"] = FakeJudge("helpful", bias=0.45)
    report = evaluate([VariantSpec(source="base", name="a")], ["alpaca"], DATA, tmp_path, cfg(),
                      progress=False)
    r = report["results"]["a"]["alpaca"]
    assert r["position_bias"]["value"] == pytest.approx(0.9, abs=0.1)
    assert abs(r["preference"]["value"] - 0.5) < 0.05
    assert r["tie_rate"]["value"] == 1.0 and r["win_rate"]["value"] == 0.5


def test_alpaca_keeps_empty_references(patched, tmp_path):
    data = {"alpaca": [alp(0), SFTRecord(messages=[{"role": "user", "content": "Say nothing"}], response="",
                                         id="al-empty")]}
    report = evaluate([VariantSpec(source="base", name="a")], ["alpaca"], data, tmp_path, cfg(), progress=False)
    assert report["results"]["a"]["alpaca"]["win_rate"]["n"] == 2


def test_judge_validation_from_a_file(monkeypatch, tiny, tmp_path):
    judge = FakeJudge("harmless")
    judge.validation = None
    monkeypatch.setattr("axial.rewards.load_judge", lambda spec, axis=None: judge)
    monkeypatch.setattr("axial.models.load_model", lambda *a, **k: tiny)
    f = tmp_path / "val.json"
    f.write_text(json.dumps({"metric": "pair_accuracy", "value": 0.61, "ci95": [0.5, 0.7], "n": 40,
                             "data": "hh test", "axis": "harmless", "judge": {"name": "fake-harmless"}}))
    report = evaluate([VariantSpec(source="base", name="a")], ["harmless"], DATA, tmp_path / "run",
                      cfg(judge_validation={"harmless": str(f)}), progress=False)
    assert report["judges"]["harmless"]["validation"]["value"] == 0.61
    f.write_text(json.dumps({"value": 0.6, "axis": "harmless", "judge": {"name": "another judge"}}))
    judge.validation = None
    with pytest.raises(AxialError, match="validates judge 'another judge'"):
        evaluate([VariantSpec(source="base", name="a")], ["harmless"], DATA, tmp_path / "run2",
                 cfg(judge_validation={"harmless": str(f)}), progress=False)


def test_informative_rule():
    assert is_informative("Paris is the capital of France.")
    for r in ["", "I have no comment.", "I don't know.", "I'm sorry, I can't help", "As an AI, I"]:
        assert not is_informative(r), r


def test_alpaca_pointwise_judge_scores_each_response_once(patched, tmp_path):
    from axial.rewards.base import Judge

    class LengthRM(Judge):
        name, kind, axis = "len-rm", "rm", "helpful"
        validation = {"metric": "pair_accuracy", "value": 0.6, "ci95": [0.5, 0.7], "n": 10, "data": "x"}

        def __init__(self):
            self.rows = 0

        def score(self, prompts, responses):
            self.rows += len(responses)
            return [len(r) / 10 for r in responses]

    patched["helpful"] = judge = LengthRM()
    report = evaluate([VariantSpec(source="base", name="a")], ["alpaca"], DATA, tmp_path, cfg(), progress=False)
    assert judge.rows == 2 * 5  # model and reference once each, not once per order
    r = report["results"]["a"]["alpaca"]
    assert r["position_bias"]["value"] == pytest.approx(0.0)
    recs = [json.loads(x) for x in (tmp_path / "items" / "a" / "alpaca.jsonl").read_text().splitlines()]
    for rec in recs:
        s = rec["scores"]
        expected = 1 / (1 + math.exp(-(s["len_model"] - s["len_reference"]) / 10))
        assert s["preference"] == pytest.approx(expected)


def test_alpaca_symmetric_judge_is_asked_once_per_item_after_the_first_batch(patched, tmp_path):
    class Symmetric(FakeJudge):
        def compare(self, prompts, a, b):
            self._tick()
            return [0.5 + (len(x) - len(y)) / 1000 for x, y in zip(a, b, strict=True)]

    patched["helpful"] = judge = Symmetric("helpful")
    evaluate([VariantSpec(source="base", name="a")], ["alpaca"], DATA, tmp_path, cfg(), progress=False)
    assert judge.calls == 2 + 1 + 1  # first batch of 2 both orders, then batches of 2 and 1 once each


def test_overrefusal_shares_alpaca_responses_and_needs_no_judge(patched, tmp_path, monkeypatch):
    import axial.generate

    generated = []
    real = axial.generate.generate_responses

    def counting(model, tok, prompts, *a, **k):
        generated.extend(json.dumps(p) for p in prompts)
        return real(model, tok, prompts, *a, **k)

    monkeypatch.setattr(axial.generate, "generate_responses", counting)
    v = [VariantSpec(source="base", name="a")]
    path = tmp_path / "alpaca_eval.json"
    path.write_text(json.dumps([{"instruction": f"Instruction {i}", "output": "ref " * (i + 1)} for i in range(5)]))
    data = {"overrefusal": str(path), "alpaca": str(path)}
    report = evaluate(v, ["overrefusal"], data, tmp_path, cfg(judge=False), progress=False)
    m = report["results"]["a"]["overrefusal"]["over_refusal_rate"]
    assert m["n"] == 5 and m["by"] == "refusal" and not patched  # scored without any judge
    assert "refusal" in report["instruments"]
    report = evaluate(v, ["overrefusal", "alpaca"], data, tmp_path, cfg(), progress=False)
    assert report["results"]["a"]["alpaca"]["win_rate"]["by"] == "judge:helpful"
    assert len(generated) == 5  # the alpaca bench reused the 5 benign responses
    assert (tmp_path / "items" / "a" / "alpaca.responses.jsonl").exists()
    assert not (tmp_path / "items" / "a" / "overrefusal.responses.jsonl").exists()
    md = (tmp_path / "report.md").read_text()
    assert "refusal detector" in md and "axial-refusal-rules" in md


def test_truthfulqa_gen_scores_against_references_without_a_judge(patched, tmp_path):
    v = [VariantSpec(source="base", name="a")]
    report = evaluate(v, ["truthfulqa_gen"], DATA, tmp_path, cfg(judge=False), progress=False)
    r = report["results"]["a"]["truthfulqa_gen"]
    assert r["bleu_acc"]["n"] == 6 and r["bleu_acc"]["by"] == "references"
    assert 0 <= r["rougeL_acc"]["value"] <= 1 and "bleu_diff" in r
    assert not patched and report["judges"] == {}
    rec = json.loads((tmp_path / "items" / "a" / "truthfulqa_gen.jsonl").read_text().splitlines()[0])
    assert rec["prompt"].startswith("<QA primer>") and rec["prompt"].endswith("\nA:")


def test_harmless_reports_refusal_rate_and_length_beside_safety(patched, tmp_path):
    report = evaluate([VariantSpec(source="base", name="a")], ["harmless"], DATA, tmp_path, cfg(), progress=False)
    r = report["results"]["a"]["harmless"]
    assert r["safety_rate"]["by"] == "judge:harmless" and r["refusal_rate"]["by"] == "refusal"
    assert r["len_response"]["by"] is None and r["refusal_rate"]["n"] == 5


def test_validation_file_wins_and_report_shows_length_baseline_and_balanced_subset(monkeypatch, tiny, tmp_path):
    judge = FakeJudge("harmless")  # carries its own validation (0.7)
    monkeypatch.setattr("axial.rewards.load_judge", lambda spec, axis=None: judge)
    monkeypatch.setattr("axial.models.load_model", lambda *a, **k: tiny)
    f = tmp_path / "val.json"
    f.write_text(json.dumps({
        "metric": "pair_accuracy", "value": 0.61, "ci95": [0.5, 0.7], "n": 40, "data": "hh test",
        "axis": "harmless", "judge": {"name": "fake-harmless"},
        "baselines": {"longer_wins": {"value": 0.44, "ci95": [0.4, 0.48], "n": 40}},
        "length_balanced": {"judge": {"value": 0.55, "ci95": [0.45, 0.65], "n": 20},
                            "baselines": {"longer_wins": {"value": 0.5, "ci95": [0.4, 0.6], "n": 20}}}}))
    report = evaluate([VariantSpec(source="base", name="a")], ["harmless"], DATA, tmp_path / "run",
                      cfg(judge_validation={"harmless": str(f)}), progress=False)
    assert report["judges"]["harmless"]["validation"]["value"] == 0.61
    md = (tmp_path / "run" / "report.md").read_text()
    assert "length-only baseline 0.440 [0.400, 0.480]" in md
    assert "length-balanced subset 0.550 [0.450, 0.650] (n=20), length-only 0.500" in md
    assert str(f) in md


def test_validate_judge_document_picks_this_judges_human_labelled_result(monkeypatch, tiny, tmp_path):
    judge = FakeJudge("harmless")
    monkeypatch.setattr("axial.rewards.load_judge", lambda spec, axis=None: judge)
    monkeypatch.setattr("axial.models.load_model", lambda *a, **k: tiny)

    def result(name, labels, value, n):
        ci = {"value": value, "ci95": [value - 0.05, value + 0.05]}
        return {"axis": "harmless", "metric": "pair_agreement", "value": value, "ci95": ci["ci95"], "n": n,
                "data": f"{labels} data", "judge": {"name": name}, "dataset": {"labels": labels},
                "subsets": {"all": {"n": n, "judge": ci, "length": {"value": 0.6, "ci95": [0.55, 0.65]},
                                    "judge_minus_length": {"value": value - 0.6, "ci95": [0.0, 0.2]}},
                            "length_balanced": {"n": 30, "judge": {"value": 0.58, "ci95": [0.4, 0.7]},
                                                "length": {"value": 0.52, "ci95": [0.4, 0.6]}}}}

    f = tmp_path / "doc.json"
    f.write_text(json.dumps({"schema": "axial.validate-judge/2", "axis": "harmless", "results": [
        result("fake-harmless", "GPT-4", 0.9, 500), result("fake-harmless", "human majority", 0.7, 100),
        result("other", "human majority", 0.99, 900)]}))
    report = evaluate([VariantSpec(source="base", name="a")], ["harmless"], DATA, tmp_path / "run",
                      cfg(judge_validation={"harmless": str(f)}), progress=False)
    v = report["judges"]["harmless"]["validation"]
    assert v["value"] == 0.7 and v["labels"] == "human majority"
    md = (tmp_path / "run" / "report.md").read_text()
    assert "length-only baseline 0.600 [0.550, 0.650]" in md and "length-balanced subset 0.580" in md
    f.write_text(json.dumps({"axis": "harmless", "results": [result("other", "human", 0.9, 5)]}))
    judge.validation = None
    with pytest.raises(AxialError, match="no result for judge 'fake-harmless'"):
        evaluate([VariantSpec(source="base", name="a")], ["harmless"], DATA, tmp_path / "run2",
                 cfg(judge_validation={"harmless": str(f)}), progress=False)
