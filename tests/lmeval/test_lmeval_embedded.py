"""lm-eval's truthfulqa_mc1 / truthfulqa_mc2 task code on the embedded model, three ways, item by item:

  `axial eval`'s truthfulqa_mc  ==  `python -m axial.lmeval --model axial` (lm-eval's CLI, base source)
                                ==  lm-eval's own `hf` model (HFLM) on the same converted weights

on a handful of TruthfulQA test-split questions, fp32 on the CPU. The answer sets come from the CSV
(axial.lmeval.tasks; lm-eval's mc_task.json / the HF dataset are not reachable here); prompts, choices, MC2's
process_results and the metrics are lm-eval's task files. The three compute the same sums of log-probabilities
in different orders (axial eval: primer KV cache; AxialLM: per-question context cache; HFLM: one full pass per
answer), so per-answer log-likelihoods are held to 2e-3, MC2 to 1e-3, MC1 exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

REPO = Path(__file__).resolve().parents[2]
N = 4


def _samples(folder: Path, task: str) -> dict[str, dict]:
    files = sorted(folder.rglob(f"samples_{task}_*.jsonl"))
    assert files, f"lm-eval wrote no samples for {task} under {folder}"
    rows = [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()]
    return {r["doc"]["axial_id"]: r for r in rows}


def _logliks(sample: dict) -> list[float]:
    return [float(r[0]) for r in sample["filtered_resps"]]


@pytest.mark.integration
@pytest.mark.shared
def test_truthfulqa_task_code_agrees_with_axial_eval_and_hflm(tmp_path, shared_data):
    TQA = shared_data / "truthfulqa" / "TruthfulQA.csv"
    import lm_eval
    from lm_eval.tasks import TaskManager

    from axial.evaluate.config import EvalConfig
    from axial.evaluate.harness import evaluate
    from axial.lmeval.tasks import write_truthfulqa_tasks
    from axial.models import resolve_model_path
    from axial.variants import VariantSpec

    tasks = write_truthfulqa_tasks(str(TQA), tmp_path / "tasks", split="test", limit=N)
    assert tasks["n"] == N

    # 1. axial eval (the same split and limit pick the same questions)
    evaluate([VariantSpec(model="embedded", dtype="fp32", device="cpu")], ["truthfulqa_mc"],
             data={"truthfulqa": str(TQA)}, out=tmp_path / "eval",
             config=EvalConfig(limit=N, judge=False, bootstrap_resamples=100), progress=False)
    axial_items = {r["id"]: r for r in map(json.loads, (tmp_path / "eval" / "items" / "base" / "truthfulqa_mc.jsonl")
                                           .read_text().splitlines()) if "id" in r}

    # 2. lm-eval's CLI with the axial model (registered by `python -m axial.lmeval`)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "axial.lmeval", "--model", "axial", "--model_args", "model=embedded",
           "source=base", "dtype=fp32", "--device", "cpu", "--batch_size", "8", "--include_path",
           str(tmp_path / "tasks"), "--tasks", *tasks["tasks"], "--output_path", str(tmp_path / "lm_axial"),
           "--log_samples"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    # 3. lm-eval's HFLM on the converted weights, through its Python API
    hf = lm_eval.simple_evaluate(model="hf", model_args={"pretrained": resolve_model_path("embedded"),
                                                         "dtype": "float32"},
                                 tasks=tasks["tasks"], device="cpu", batch_size=8, log_samples=True,
                                 task_manager=TaskManager(include_path=str(tmp_path / "tasks")))

    mc1 = _samples(tmp_path / "lm_axial", "truthfulqa_mc1_csv")
    mc2 = _samples(tmp_path / "lm_axial", "truthfulqa_mc2_csv")
    hf_mc1 = {s["doc"]["axial_id"]: s for s in hf["samples"]["truthfulqa_mc1_csv"]}
    hf_mc2 = {s["doc"]["axial_id"]: s for s in hf["samples"]["truthfulqa_mc2_csv"]}
    assert set(mc1) == set(mc2) == set(hf_mc1) == set(hf_mc2) == set(axial_items) and len(axial_items) == N
    for item_id, item in axial_items.items():
        answers = item["answers"]
        for lm_sample, hf_sample, kind in ((mc1[item_id], hf_mc1[item_id], "mc1"),
                                           (mc2[item_id], hf_mc2[item_id], "mc2")):
            choices = lm_sample["doc"][f"{kind}_targets"]["choices"]
            ours = [answers[c]["loglik"] for c in choices]
            assert _logliks(lm_sample) == pytest.approx(ours, abs=2e-3), (item_id, kind)
            assert _logliks(hf_sample) == pytest.approx(ours, abs=2e-3), (item_id, kind)
        assert float(mc1[item_id]["acc"]) == float(hf_mc1[item_id]["acc"]) == item["scores"]["mc1"]
        assert float(mc2[item_id]["acc"]) == pytest.approx(item["scores"]["mc2"], abs=1e-3)
        assert float(hf_mc2[item_id]["acc"]) == pytest.approx(item["scores"]["mc2"], abs=1e-3)
