"""`axial eval` killed mid-run resumes to the same report, scoring only what was not saved (issue 15, suite).

A tiny model folder (safetensors) is evaluated on 8 TruthfulQA-shaped items; the killed runs die as they
append the 4th item (SIGKILL before the write, or SIGXFSZ in the middle of it, leaving half a line).
"""

from __future__ import annotations

import json

import pytest
from rel_helpers import killed_while_writing, sigkilled_before_writing

from axial.data.records import QARecord
from axial.evaluate import EvalConfig, evaluate
from axial.variants import VariantSpec

N = 8
DATA = {"truthfulqa": [QARecord(question=f"Question number {i}?", best_answer=f"best {i}",
                                correct_answers=[f"true {i}"], incorrect_answers=[f"false {i}"], id=f"qa-{i}")
                       for i in range(N)]}


def _run(model_dir, out):
    variants = [VariantSpec(model=str(model_dir), source="base", name="a", dtype="fp32", device="cpu")]
    return lambda: evaluate(variants, ["truthfulqa_mc"], DATA, out,
                            EvalConfig(split="all", bootstrap_resamples=100), progress=False)


@pytest.fixture(scope="module")
def reference(tiny_model_dir, tmp_path_factory):
    return _run(tiny_model_dir, tmp_path_factory.mktemp("eval-ref"))()


@pytest.mark.parametrize("kill", ["sigkill", "torn"])
def test_killed_eval_resumes_to_the_same_report(kill, tiny_model_dir, tmp_path, reference, monkeypatch, observe):
    out = tmp_path / "eval"
    items = out / "items" / "a" / "truthfulqa_mc.jsonl"
    if kill == "sigkill":
        sigkilled_before_writing("truthfulqa_mc.jsonl", _run(tiny_model_dir, out), nth=4)
    else:
        killed_while_writing("truthfulqa_mc.jsonl", _run(tiny_model_dir, out), nth=4, keep_bytes=20)
    saved = items.read_text()
    assert saved.count("\n") == 3 and saved.endswith("\n") == (kill == "sigkill")
    assert not (out / "report.json").exists()

    from axial.evaluate.truthfulqa_mc import MCScorer

    scored = []
    real = MCScorer.score
    monkeypatch.setattr(MCScorer, "score", lambda self, q, answers: scored.append(q) or real(self, q, answers))
    report = _run(tiny_model_dir, out)()
    same = report["results"] == reference["results"]
    observe(f"3 items saved before the kill; the rerun scored {len(scored)} of {N}; report "
            f"{'identical to' if same else 'DIFFERENT from'} an uninterrupted run's")
    assert len(scored) == N - 3, "saved items were scored again, or missing ones skipped"
    ids = [json.loads(line)["id"] for line in items.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == N
    assert report["results"] == reference["results"]
    assert json.loads((out / "report.json").read_text())["results"] == json.loads(json.dumps(reference["results"]))
