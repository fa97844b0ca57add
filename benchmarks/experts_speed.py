"""Expert-training throughput on this machine: seconds per optimizer step and tokens/s for LoRA on a base model.

    python benchmarks/experts_speed.py [--model embedded] [--steps 8] [--out benchmarks/results/experts/speed.json]

Every sequence is exactly --seq tokens long (prompt half, completion half), so tokens/s is comparable across
settings. The first two steps (allocation warm-up) are excluded from the timing. Runs the real train_expert code
path (TRL SFTTrainer + PEFT), so the numbers are what `axial train-expert` gets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from axial.data.records import SFTRecord
from axial.experts.config import ExpertConfig
from axial.experts.train import LOG_FILE, train_expert
from axial.models import load_model

WORDS = ("the model learns to answer each question with care and gives a clear and useful reply while "
         "it keeps the facts straight and says when it is not sure").split()


def _text(tok, n_tokens: int, offset: int) -> str:
    words, i = [], offset
    while len(tok(" ".join(words), add_special_tokens=False)["input_ids"]) < n_tokens:
        words.append(WORDS[i % len(WORDS)])
        i += 1
    return " ".join(words)


def run(model_spec: str, dtype: str, batch: int, seq: int, steps: int, r: int) -> dict:
    model, tok = load_model(model_spec, dtype="bf16" if dtype == "bf16" else "fp32", device="cpu")
    # ~20 tokens of chat template wrap each half.
    half = max(8, seq // 2 - 20)
    records = [("helpful", SFTRecord(messages=[{"role": "user", "content": _text(tok, half, i)}],
                                     response=_text(tok, half, i + 7)))
               for i in range(batch * (steps + 1))]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ExpertConfig(axis="helpful", out=tmp, model=model_spec, max_steps=steps, batch_size=batch,
                           lora_r=r, lora_alpha=2 * r, max_length=seq, val_size=0, save_steps=10_000,
                           dtype=dtype, inject=False)
        out = train_expert(cfg, records, base=(model, tok))
        log = [json.loads(line) for line in (Path(out) / LOG_FILE).read_text().splitlines()]
    steps_log = [e for e in log if "loss" in e]
    times = [b["time"] - a["time"] for a, b in zip(steps_log[1:], steps_log[2:], strict=False)]
    tokens = [b["num_input_tokens_seen"] - a["num_input_tokens_seen"]
              for a, b in zip(steps_log[1:], steps_log[2:], strict=False)]
    sec = statistics.median(times)
    return {"dtype": dtype, "batch": batch, "seq": seq, "lora_r": r, "timed_steps": len(times),
            "sec_per_step_median": round(sec, 3), "sec_per_step_min": round(min(times), 3),
            "sec_per_step_max": round(max(times), 3),
            "tokens_per_s": round(sum(tokens) / sum(times), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--settings", default="fp32:2,fp32:4,bf16:2",
                    help="comma list of dtype:batch")
    ap.add_argument("--out", default="benchmarks/results/experts/speed.json")
    a = ap.parse_args()
    rows = []
    for item in a.settings.split(","):
        dtype, batch = item.split(":")
        row = run(a.model, dtype, int(batch), a.seq, a.steps, 8)
        print(json.dumps(row), flush=True)
        rows.append(row)
    machine = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "platform": platform.platform(),
               "cuda": torch.cuda.is_available(), "load_average_1m_at_end": os.getloadavg()[0]}
    result = {"model": a.model, "machine": machine,
              "note": "LoRA r=8 all-linear, TRL SFTTrainer, completion-only loss; the machine was shared with "
                      "other jobs (see load average), so these are upper bounds for a quiet machine",
              "command": "python benchmarks/experts_speed.py " + " ".join(
                  f"--{k} {v}" for k, v in vars(a).items()),
              "rows": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
