"""train_expert: one PEFT LoRA expert per axis on the frozen base, through TRL's SFTTrainer / DPOTrainer.

Output folder:
  adapter_model.safetensors, adapter_config.json   a plain PEFT adapter (PeftModel.from_pretrained loads it)
  axial_expert.json                                axis, data, split, injection, hyper-parameters, commit, metrics
                                                   (train_loss over the whole run, resumed parts included; written
                                                   last: its presence marks a finished expert)
  expert_config.json                               the ExpertConfig (written first; a rerun must agree with it)
  train_log.jsonl                                  one line per logged step (loss, lr, ...), each step once
  checkpoints/checkpoint-N/                        every `save_steps` steps; removed once training finishes

Killed at any point and started again with the same config, training resumes from the last complete
checkpoint (Trainer restores adapter, optimizer, scheduler, RNG and data position); the log's lines past that
checkpoint, and a line cut off by the kill, are dropped first.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

from transformers import TrainerCallback

from axial.distributed import RowCounter, check_launch, gather
from axial.errors import AxialError, DataError
from axial.experts.config import MIXED, ExpertConfig
from axial.experts.data import build_examples, load_axis_records
from axial.io import atomic_write_json, atomic_write_lines

logger = logging.getLogger(__name__)

SIDECAR = "axial_expert.json"
CONFIG_FILE = "expert_config.json"
LOG_FILE = "train_log.jsonl"
CHECKPOINTS = "checkpoints"


def is_trained(out: str | Path) -> bool:
    out = Path(out)
    return (out / SIDECAR).exists() and (out / "adapter_model.safetensors").exists()


def train_expert(config: ExpertConfig, records: list[tuple[str, object]] | None = None, *,
                 base=None) -> Path:
    """Train one expert and return its folder.

    records: (axis, record) pairs to train on instead of loading `config.data` (the collapse report uses this
    for the mixed-data adapter, where each record keeps its own axis's injection).
    base: an already loaded (model, tokenizer) to reuse; its weights are not modified (LoRA only) but PEFT
    wraps its linear layers, so pass a fresh copy per call.
    """
    check_launch()
    out = Path(config.out)
    if is_trained(out) and not config.overwrite:
        return out
    if config.init_adapter:
        _check_init_adapter(config.init_adapter)
    if config.overwrite and out.exists():
        shutil.rmtree(out)
    _check_resume_config(config, out)
    if records is None:
        if config.axis == MIXED:
            raise AxialError("ExpertConfig.axis: 'mixed' needs records tagged with their axes (Python API)")
        if not config.data:
            raise AxialError("ExpertConfig.data: at least one data source is required")
        loaded = load_axis_records(config.data, method=config.method, split=config.split, limit=config.limit,
                                   skip_invalid=config.skip_invalid)
        records = [(config.axis, r) for r in loaded]
    records, duplicates = _duplicates(records, config.dedupe)
    examples, skipped = build_examples(records, config.method, config.inject, skip_invalid=config.skip_invalid)
    for reason in skipped:
        logger.warning("skipped: %s", reason)
    train_ex, val_ex = _split_validation(examples, config.val_size, config.seed)
    if not train_ex:
        raise AxialError(f"ExpertConfig.val_size: {config.val_size} leaves no training examples "
                         f"(only {len(examples)} records)")

    out.mkdir(parents=True, exist_ok=True)
    config.save(out / CONFIG_FILE)
    model, tok = base if base is not None else _load_base(config)
    from axial.baseref import base_reference

    base_ref = base_reference(model)  # read before PEFT wraps the linears
    checkpoint = last_checkpoint(out / CHECKPOINTS)
    # Seed before PEFT initialises the adapter inside the trainer: some TRL versions wrap the model before the
    # Trainer seeds, and the init then depended on whatever ran earlier in the process.
    from transformers import set_seed

    set_seed(config.seed)
    trainer = _make_trainer(config, model, tok, train_ex, val_ex, out, _step_of(checkpoint))
    dropped = len(train_ex) - len(trainer.train_dataset)
    if dropped:
        logger.warning("%d of %d training examples have no response token left within max_length=%d and are "
                       "not trained on", dropped, len(train_ex), config.max_length)
    started = time.time()
    counter = trainer.data_collator = RowCounter(trainer.data_collator)
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    trainer.data_collator = counter.collate
    metrics = {"train_loss": run_train_loss(trainer.state.log_history), "train_loss_this_run": result.training_loss,
               "global_step": trainer.state.global_step,
               "resumed_from_step": _step_of(checkpoint), "n_train": len(train_ex), "n_val": len(val_ex),
               "n_skipped_invalid": len(skipped), "skipped_invalid": skipped,
               "n_duplicates": len(duplicates), "deduped": config.dedupe, "duplicates": duplicates[:20],
               # TRL drops examples whose response is cut off entirely by max_length; count them.
               "n_train_dropped_by_max_length": len(train_ex) - len(trainer.train_dataset),
               "runtime_s_this_run": round(time.time() - started, 1)}
    metrics.update(_throughput(trainer, time.time() - started, _step_of(checkpoint)))
    # Rows each process collated in this run: every rank of a data-parallel run must have trained on its share.
    metrics["distributed"] = {"world_size": trainer.args.world_size,
                              "parallel_mode": trainer.args.parallel_mode.value,
                              "rows_per_rank": gather(counter.rows)}
    if val_ex:
        metrics.update({k: v for k, v in trainer.evaluate().items() if k.startswith("eval_")})
    # Under `accelerate launch` every process runs this function; one writes the results.
    if trainer.is_world_process_zero():
        trainer.model.save_pretrained(str(out), selected_adapters=["default"], safe_serialization=True)
        _name_base_portably(out, base_ref)
        _write_sidecar(config, out, metrics, records, base_ref)
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    return out


def _duplicates(records: list, dedupe: bool) -> tuple[list, list[str]]:
    """(records, descriptions of the records repeating an earlier one), duplicates dropped when `dedupe`.

    Same content = same axis and same record content (axial.data.records.content_key), across all sources.
    """
    from axial.data.records import content_key

    first: dict[tuple[str, str], int] = {}
    kept, found = [], []
    for i, (axis, record) in enumerate(records):
        key = (axis, content_key(record))
        if key in first:
            found.append(f"record #{i} ({getattr(record, 'source', '') or axis} id={getattr(record, 'id', '')!r}) "
                         f"duplicates record #{first[key]}")
            if dedupe:
                continue
        else:
            first[key] = i
        kept.append((axis, record))
    if found:
        logger.warning("%d of %d training records repeat an earlier record's content; %s", len(found),
                       len(records), "dropped (dedupe)" if dedupe else "trained on as often as they appear (set "
                       "dedupe=true to drop them)")
    return kept, found


def _check_init_adapter(path: str) -> None:
    """Before anything loads: the adapter to continue from must be a local safetensors PEFT folder (PEFT itself
    would also accept a pickled adapter_model.bin, or try the hub)."""
    from axial.mixture.experts import check_adapter_folder

    try:
        check_adapter_folder(path)
    except AxialError as e:
        raise AxialError(f"ExpertConfig.init_adapter: {e}") from None


def _split_validation(examples: list[dict], val_size: int, seed: int) -> tuple[list[dict], list[dict]]:
    """A held-out slice of the TRAINING split for a validation loss (never the benchmark's test items)."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = min(val_size, len(examples) // 5)
    val = [examples[i] for i in order[:n_val]]
    train = [examples[i] for i in order[n_val:]]
    return train, val


def _load_base(config: ExpertConfig):
    from axial.models import load_model

    # Loaded on CPU; the Trainer (or `accelerate launch`) moves it to the right device, so nothing here
    # names a device. The frozen base is kept in bf16 when training in bf16: it is only read.
    model, tok = load_model(config.model, dtype="bf16" if _use_bf16(config) else "fp32", device="cpu")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def _use_bf16(config: ExpertConfig) -> bool:
    import torch

    from axial.models import has_fast_bf16_cpu

    if config.dtype != "auto":
        return config.dtype == "bf16"
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    # On CPUs with AVX512-BF16/AMX a bf16 LoRA step was 1.4x faster than fp32 with OMP_NUM_THREADS=1, but 5-10x
    # SLOWER with torch's default threads on an oversubscribed machine (benchmarks/results/experts/README.md).
    return has_fast_bf16_cpu()


def _on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def _lora_config(config: ExpertConfig):
    from peft import LoraConfig

    targets = config.target_modules
    target = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=target, task_type="CAUSAL_LM", bias="none")


def _make_trainer(config: ExpertConfig, model, tok, train_ex, val_ex, out: Path, resumed_step: int):
    from datasets import Dataset
    from transformers.utils import is_torch_bf16_gpu_available

    peft_config = _lora_config(config)
    bf16 = _use_bf16(config)
    if config.init_adapter:
        from peft import PeftModel

        # Continue training an existing adapter (sequential training: axis after axis on one adapter).
        model = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
        peft_config = None
    common = dict(
        output_dir=str(out / CHECKPOINTS), per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate, num_train_epochs=config.epochs, max_steps=config.max_steps,
        lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay, logging_steps=1, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=config.save_total_limit, seed=config.seed, data_seed=config.seed,
        # use_cpu on every CPU run: without it the Trainer under torchrun on a CPU machine sets up NO data
        # parallelism (each process trains alone on all the data; rank 0's result is saved). Also, Trainer only
        # allows bf16 without a bf16 GPU when told it runs on CPU.
        bf16=bf16, use_cpu=_on_cpu() or (bf16 and not is_torch_bf16_gpu_available()),
        gradient_checkpointing=config.gradient_checkpointing, max_length=config.max_length,
        report_to="none", eval_strategy="no", include_num_input_tokens_seen="non_padding",
        disable_tqdm=False, dataloader_num_workers=0)
    train_ds = Dataset.from_list(train_ex)
    val_ds = Dataset.from_list(val_ex) if val_ex else None
    callbacks = [JsonlLogCallback(out / LOG_FILE, resumed_step)]
    if config.method == "sft":
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(completion_only_loss=True, **common)
        return SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                          processing_class=tok, peft_config=peft_config, callbacks=callbacks)
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(beta=config.beta, **common)
    return DPOTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                      processing_class=tok, peft_config=peft_config, callbacks=callbacks)


def last_checkpoint(folder: Path) -> Path | None:
    """The newest COMPLETE checkpoint (a kill during saving can leave a newer, partial one)."""
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists()
            and p.name.split("-")[-1].isdigit()]
    return max(done, key=_step_of) if done else None


def _step_of(checkpoint: Path | None) -> int:
    return int(checkpoint.name.split("-")[-1]) if checkpoint else 0


def _check_resume_config(config: ExpertConfig, out: Path) -> None:
    saved = out / CONFIG_FILE
    if not saved.exists() or last_checkpoint(out / CHECKPOINTS) is None:
        return
    previous = ExpertConfig.load(saved).training_fields()
    changed = {k: (previous[k], v) for k, v in config.training_fields().items() if previous[k] != v}
    if changed:
        detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        raise AxialError(f"{out}: has checkpoints from a different config ({detail}); rerun with the same "
                         "settings to resume, or pass overwrite=true to start over")


def _throughput(trainer, seconds: float, resumed_step: int) -> dict:
    steps = trainer.state.global_step - resumed_step
    tokens = getattr(trainer.state, "num_input_tokens_seen", 0) or 0
    out = {"sec_per_step_this_run": round(seconds / steps, 3) if steps else None,
           "tokens_seen": int(tokens)}
    if steps and tokens:
        # tokens_seen counts the whole run; scale to the steps done in this process for a fair rate.
        out["tokens_per_s_this_run"] = round(tokens * steps / trainer.state.global_step / seconds, 1)
    return out


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _name_base_portably(out: Path, base_ref: dict) -> None:
    """PEFT writes the base's load path (for a GGUF, this machine's cache folder); name it portably instead."""
    from axial.baseref import peft_base_name

    path = out / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = peft_base_name(base_ref)
    atomic_write_json(path, config, sort_keys=True)


def _write_sidecar(config: ExpertConfig, out: Path, metrics: dict, records, base_ref: dict) -> None:
    from axial.axes import get_axis

    axes = sorted({axis for axis, _ in records})
    sidecar = {
        "axis": config.axis,
        "method": config.method,
        "base_model": config.model,
        "base": base_ref,
        "data": list(config.data),
        "split": config.split,
        "limit": config.limit,
        "n_records": len(records),
        "injection": {
            "enabled": config.inject,
            "text": {a: get_axis(a).injection for a in axes} if config.inject else None,
            # AlignX stage 1: the injection is a training-time device only.
            "at_inference": False,
        },
        "hyperparameters": {k: v for k, v in config.to_dict().items()
                            if k not in ("axis", "data", "out", "model", "method", "inject", "split", "overwrite")},
        "git_commit": _git_commit(),
        "metrics": metrics,
    }
    atomic_write_json(out / SIDECAR, sidecar, default=str)


def run_train_loss(log_history: list[dict]) -> float | None:
    """Mean training loss over every step of the run, the part before a resume included.

    Trainer's `training_loss` averages only the steps this process ran; the log history, restored from the
    checkpoint on resume, has them all. Each entry's loss is weighted by the steps it covers.
    """
    total, steps, last = 0.0, 0, 0
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            covered = entry["step"] - last
            total, steps, last = total + entry["loss"] * covered, steps + covered, entry["step"]
    return total / steps if steps else None


def read_train_log(path: Path) -> list[str]:
    """The log's complete lines. A last line cut off by a kill is dropped (that step is redone); a broken line
    anywhere else is an error naming the file and line."""
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    cut_off = lines.pop()  # "" when the file ends with a newline, as every complete write does
    kept = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"corrupt line ({e.msg}); only a cut-off last line is repaired on resume: fix or "
                            "delete the line, or pass overwrite=true to start over", path=str(path),
                            line=lineno) from None
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
            raise DataError("expected a JSON object with an integer 'step'", path=str(path), line=lineno)
        kept.append(line)
    if cut_off.strip():
        logger.warning("%s: dropped a cut-off last line (the run was killed while writing it)", path)
    return kept


class JsonlLogCallback(TrainerCallback):
    """Appends each Trainer log (loss, lr, grad norm) as one JSON line.

    Before training starts, lines past the checkpoint it resumes from (steps the killed run did and this run
    redoes; all of them when there is no checkpoint) and a cut-off last line are dropped, so the log holds each
    step once.
    """

    def __init__(self, path: Path, resumed_step: int):
        self.path = path
        if path.exists() and int(os.environ.get("RANK", "0")) == 0:
            kept = [line for line in read_train_log(path) if json.loads(line)["step"] <= resumed_step]
            atomic_write_lines(path, kept)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            with open(self.path, "a") as f:
                f.write(json.dumps({"step": state.global_step, "time": round(time.time(), 2), **logs}) + "\n")
