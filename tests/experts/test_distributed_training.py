"""Data-parallel expert training: 2 CPU processes over gloo (torchrun, and accelerate launch with the shipped
cpu_ddp config) train the same adapter as 1 process at the same global batch, and both ranks take part.

Each launch starts two Python processes that import torch/transformers/TRL (~10-15 s each on 2 cores).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from axial.distributed import accelerate_config, accelerate_configs, check_launch, requested_processes
from axial.errors import AxialError
from axial.testing import save_tiny_llama

REPO = Path(__file__).resolve().parents[2]
# lora_dropout=0: dropout masks are drawn per process, so they would differ between the two layouts.
COMMON = ["--axis", "helpful", "--split", "all", "max_steps=3", "val_size=0", "dtype=fp32", "lora_dropout=0",
          "lora_r=4", "lora_alpha=8", "save_steps=100"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    model = save_tiny_llama(root / "tiny")
    data = root / "data.jsonl"
    # Responses of different lengths: the per-rank token counts differ, so an equal result needs the loss to be
    # normalised over the GLOBAL batch's tokens, not averaged per rank.
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Count to {i} please."}],
                                        "response": " ".join(str(j) for j in range(i % 7 + 1)) + " done.",
                                        "id": f"r{i}"}) + "\n" for i in range(24)))
    return root, model, data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(launcher: list[str], out: Path, setup, batch_size: int):
    root, model, data = setup
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = launcher + ["-m", "axial.cli", "train-expert", "--data", str(data), "--out", str(out), "--model",
                      str(model), *COMMON, f"batch_size={batch_size}"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((out / "axial_expert.json").read_text())["metrics"], load_file(str(out / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def single(setup):
    """The 1-process reference, in this process (same CLI parsing, no extra interpreter start-up)."""
    from axial.cli import main

    root, model, data = setup
    out = root / "one"
    main(["train-expert", "--data", str(data), "--out", str(out), "--model", str(model), *COMMON, "batch_size=4"])
    return json.loads((out / "axial_expert.json").read_text())["metrics"], load_file(str(out / "adapter_model.safetensors"))


def _assert_same_training(single, metrics, adapter):
    ref_metrics, ref = single
    assert ref_metrics["distributed"] == {"world_size": 1, "parallel_mode": "not_parallel",
                                          "rows_per_rank": ref_metrics["distributed"]["rows_per_rank"]}
    dist = metrics["distributed"]
    assert dist["world_size"] == 2 and dist["parallel_mode"] == "distributed"
    assert len(dist["rows_per_rank"]) == 2 and all(n > 0 for n in dist["rows_per_rank"])  # both ranks trained
    # Same global batch (2 ranks x 2 = 1 x 4), same data order: the same steps, the same adapter.
    assert metrics["global_step"] == ref_metrics["global_step"] == 3
    assert metrics["tokens_seen"] == ref_metrics["tokens_seen"]
    assert sum(dist["rows_per_rank"]) == sum(ref_metrics["distributed"]["rows_per_rank"])
    assert set(adapter) == set(ref)
    moved = max(ref[k].abs().max().item() for k in ref if "lora_B" in k)
    assert moved > 1e-5  # the B matrices left zero: training happened
    for key in ref:
        torch.testing.assert_close(adapter[key], ref[key], atol=1e-6, rtol=1e-4)


def test_torchrun_two_processes_equal_one(setup, single):
    root = setup[0]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                str(_free_port())]
    _assert_same_training(single, *_run(launcher, root / "torchrun", setup, batch_size=2))


def test_accelerate_launch_with_the_cpu_ddp_config_equals_one(setup, single):
    root = setup[0]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                str(accelerate_config("cpu_ddp")), "--num_processes", "2", "--main_process_port", str(_free_port())]
    _assert_same_training(single, *_run(launcher, root / "accelerate", setup, batch_size=2))


def test_silent_single_process_of_accelerate_cpu_is_refused(monkeypatch, tmp_path):
    argv = ["/venv/bin/python", "/venv/bin/accelerate", "launch", "--cpu", "--num_processes", "2", "-m", "axial.cli"]
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    with pytest.raises(AxialError, match="asked for 2 processes but started one.*torchrun --nproc_per_node 2"):
        check_launch(argv)
    check_launch(argv[:4] + ["--num_processes=1"] + argv[6:])            # one process asked: fine
    check_launch(argv + ["--mpirun_hostfile", "hosts"])                   # accelerate's MPI mode: real
    config = tmp_path / "c.yaml"
    config.write_text("num_processes: 4\nuse_cpu: true\n")
    assert requested_processes(["accelerate", "launch", "--config_file", str(config), "x.py"]) == 4
    monkeypatch.setenv("WORLD_SIZE", "2")
    check_launch(argv)                                                     # really distributed


def test_shipped_accelerate_configs_are_valid():
    from accelerate.commands.config.config_args import load_config_from_file

    configs = accelerate_configs()
    assert set(configs) == {"cpu_ddp", "multi_gpu", "fsdp", "deepspeed_zero2", "deepspeed_zero3"}
    kinds = {name: str(load_config_from_file(str(path)).distributed_type).split(".")[-1]
             for name, path in configs.items()}
    assert kinds == {"cpu_ddp": "MULTI_GPU", "multi_gpu": "MULTI_GPU", "fsdp": "FSDP",
                     "deepspeed_zero2": "DEEPSPEED", "deepspeed_zero3": "DEEPSPEED"}
    with pytest.raises(AxialError, match="shipped configs are"):
        accelerate_config("nope")
