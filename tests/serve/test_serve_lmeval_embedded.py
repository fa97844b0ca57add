"""lm-eval's local-completions client (its real request and parsing code) against a live `axial serve` on
loopback, on the embedded model with the shipped experts: lm-eval's truthfulqa_mc1 / truthfulqa_mc2 task code
on a handful of TruthfulQA test questions gives, item by item, the scores the in-process AxialLM gives — for
the base model and for a served preset (`embedded:honest` = pref:honest=1). fp32 on the CPU; the server scores
each choice in a full pass, AxialLM shares each question's context, so per-choice log-likelihoods are held to
2e-3, MC2 to 1e-3 and MC1 exactly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("lm_eval")

REPO = Path(__file__).resolve().parents[2]
N = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def served(tmp_path):
    experts = [str(REPO / "axial" / "experts_embedded" / a) for a in ("helpful", "harmless", "honest")]
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "axial.cli", "serve", "--model", "embedded", "--dtype", "fp32", "--device", "cpu",
           "--port", str(port), "--max-batch", "8", *sum((["--experts", e] for e in experts), [])]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "axial serve did not come up"
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        yield url, experts
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.integration
@pytest.mark.shared
def test_local_completions_against_axial_serve_equals_axial_lm(served, shared_data, tmp_path):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from axial.lmeval import AxialLM
    from axial.lmeval.tasks import write_truthfulqa_tasks
    from axial.models import resolve_model_path
    from axial.sources import parse_source

    url, experts = served
    tasks = write_truthfulqa_tasks(str(shared_data / "truthfulqa" / "TruthfulQA.csv"), tmp_path / "tasks",
                                   split="test", limit=N)
    manager = TaskManager(include_path=str(tmp_path / "tasks"))
    local_lm = AxialLM(model="embedded", experts=experts, source="base", dtype="fp32", device="cpu", batch_size=8)
    for served_model, source in (("embedded", "base"), ("embedded:honest", "pref:honest=1")):
        remote = lm_eval.simple_evaluate(
            model="local-completions", tasks=tasks["tasks"], task_manager=manager, log_samples=True,
            model_args={"base_url": url + "/v1/completions", "model": served_model,
                        "tokenizer": resolve_model_path("embedded"), "tokenizer_backend": "huggingface",
                        "batch_size": 8, "max_length": 2048})
        local_lm.variant.source = parse_source(source)  # same loaded model and experts, another source
        local = lm_eval.simple_evaluate(model=local_lm, tasks=tasks["tasks"], task_manager=manager, log_samples=True)
        for task in tasks["tasks"]:
            r = {s["doc"]["axial_id"]: s for s in remote["samples"][task]}
            l_ = {s["doc"]["axial_id"]: s for s in local["samples"][task]}
            assert set(r) == set(l_) and len(r) == N
            for item_id in r:
                got = [float(x[0]) for x in r[item_id]["filtered_resps"]]
                want = [float(x[0]) for x in l_[item_id]["filtered_resps"]]
                assert got == pytest.approx(want, abs=2e-3), (served_model, task, item_id)
                if task.startswith("truthfulqa_mc1"):
                    assert float(r[item_id]["acc"]) == float(l_[item_id]["acc"])
                else:
                    assert float(r[item_id]["acc"]) == pytest.approx(float(l_[item_id]["acc"]), abs=1e-3)
        if source == "base":
            base_scores = {s["doc"]["axial_id"]: [float(x[0]) for x in s["filtered_resps"]]
                           for s in local["samples"][tasks["tasks"][1]]}
        else:  # the preset really changed the model
            honest = {s["doc"]["axial_id"]: [float(x[0]) for x in s["filtered_resps"]]
                      for s in local["samples"][tasks["tasks"][1]]}
            assert any(abs(a - b) > 1e-3 for k in honest for a, b in zip(honest[k], base_scores[k], strict=True))
