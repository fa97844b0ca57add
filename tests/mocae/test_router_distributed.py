"""Data-parallel router training: 2 CPU processes (torchrun, gloo) share the feature pass and each LM-phase
batch, and train the same router as 1 process; both ranks take part."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from axial.mixture.testing import write_random_adapter
from axial.testing import save_tiny_llama, tiny_llama

REPO = Path(__file__).resolve().parents[2]
# Token granularity (per-example token sampling) and an LM phase (gradients through the routed model).
OVERRIDES = ["dtype=fp32", "granularity=token", "tokens_per_prompt=4", "per_axis_limit=6", "epochs=4",
             "max_length=64", "forward_batch_size=4", "lm_steps=2", "lm_batch_size=4"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("router-ddp")
    model = save_tiny_llama(root / "tiny")
    experts = [str(write_random_adapter(lambda: tiny_llama()[0], root / axis, seed=i + 1, axis=axis, r=2,
                                        lora_alpha=4, target_modules=["q_proj", "v_proj"]))
               for i, axis in enumerate(("helpful", "harmless"))]
    return root, model, experts


def _args(setup, out):
    root, model, experts = setup
    return ["train-router", "--experts", ",".join(experts), "--data", "builtin:helpful", "--data",
            "builtin:harmless", "--out", str(out), "--model", str(model), *OVERRIDES]


def _result(out):
    return json.loads((out / "train_metrics.json").read_text()), load_file(str(out / "router.safetensors"))


def test_torchrun_two_processes_train_the_same_router(setup):
    from axial.cli import main

    root = setup[0]
    main(_args(setup, root / "one"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(port), "-m", "axial.cli", *_args(setup, root / "two")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    (m1, r1), (m2, r2) = _result(root / "one"), _result(root / "two")
    assert m1["distributed"]["world_size"] == 1 and m2["distributed"]["world_size"] == 2
    rows = m2["distributed"]["feature_rows_per_rank"]
    assert len(rows) == 2 and all(n > 0 for n in rows) and sum(rows) == sum(m1["distributed"]["feature_rows_per_rank"])
    assert m1["examples"] == m2["examples"]
    for a, b in zip(m1["lm_history"], m2["lm_history"], strict=True):
        assert a["lm"] == pytest.approx(b["lm"], rel=1e-4) and a["ce"] == pytest.approx(b["ce"], rel=1e-4)
    assert set(r1) == set(r2)
    for key in r1:
        torch.testing.assert_close(r2[key], r1[key], atol=1e-5, rtol=1e-4)
