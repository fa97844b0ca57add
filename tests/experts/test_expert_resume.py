"""Kill `axial train-expert` with SIGKILL after its first checkpoint, rerun the same command, check it resumed."""

import json
import os
import signal
import subprocess
import sys
import time

from axial.data import write_records
from axial.data.records import SFTRecord


def test_sigkill_then_same_command_resumes_and_finishes(tmp_path, tiny_model_dir):
    data = write_records([SFTRecord(messages=[{"role": "user", "content": f"Spell {i}."}], response=f"{i} is {i}.")
                          for i in range(40)], tmp_path / "data.jsonl")
    out = tmp_path / "expert"
    steps = 120
    cmd = [sys.executable, "-m", "axial.cli", "train-expert", "--axis", "helpful", "--data", str(data),
           "--out", str(out), "--model", str(tiny_model_dir), "--split", "all",
           f"max_steps={steps}", "save_steps=5", "batch_size=2", "val_size=0", "lora_r=4", "lora_alpha=8"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.time() + 240
        first = out / "checkpoints" / "checkpoint-5" / "trainer_state.json"
        while not first.exists():
            assert proc.poll() is None, f"training exited early: {proc.stderr.read().decode()[-2000:]}"
            assert time.time() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "axial_expert.json").exists(), "killed before the end"

    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    metrics = json.loads((out / "axial_expert.json").read_text())["metrics"]
    assert metrics["global_step"] == steps
    assert 5 <= metrics["resumed_from_step"] < steps
    logged = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert logged == list(range(1, steps + 1))  # each step logged once across both runs
