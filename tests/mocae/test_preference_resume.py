"""Kill `axial train-router objective=preference` with SIGKILL after a checkpoint, rerun the same command: the
router it ends with equals that of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

from safetensors.torch import load_file

from axial.mixture.testing import write_random_adapter
from axial.testing import tiny_llama


def test_sigkill_then_rerun_gives_the_uninterrupted_router(tmp_path, tiny_model_dir):
    experts = []
    files = []
    for i, axis in enumerate(("helpful", "harmless")):
        experts.append(str(write_random_adapter(lambda: tiny_llama()[0], tmp_path / axis, seed=i, axis=axis, r=4,
                                                lora_alpha=8, target_modules=["q_proj", "v_proj"])))
        path = tmp_path / f"{axis}.jsonl"
        path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"{axis} question {j}"}],
                                            "chosen": f"good {j}", "rejected": f"bad answer {j}"}) + "\n"
                                for j in range(30)))
        files.append(f"{axis}={path}")

    def command(out):
        return [sys.executable, "-m", "axial.cli", "train-router", "--experts", ",".join(experts),
                *[a for f in files for a in ("--data", f)], "--out", str(out), "--model", str(tiny_model_dir),
                "objective=preference", "steps=80", "checkpoint_every=4", "pair_batch_size=2", "per_axis_limit=null",
                "max_length=48", "max_response_tokens=8", "validation_per_axis=0", "expert_logps_per_axis=0",
                "dtype=fp32", "learning_rate=0.01"]

    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    straight = subprocess.run(command(tmp_path / "straight"), capture_output=True, text=True, env=env, timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]

    out = tmp_path / "killed"
    proc = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.time() + 300
        while not (out / "checkpoint.safetensors").exists():
            assert proc.poll() is None, f"training exited before its first checkpoint: {proc.stderr.read()[-2000:]}"
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "mocae.json").exists(), "killed before the end"

    rerun = subprocess.run(command(out), capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    history = json.loads((out / "train_metrics.json").read_text())["history"]
    assert [h["step"] for h in history] == list(range(1, 81))  # every step once across both runs
    a, b = load_file(str(tmp_path / "straight" / "router.safetensors")), load_file(str(out / "router.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k  # bit-identical
    assert history == json.loads((tmp_path / "straight" / "train_metrics.json").read_text())["history"]
