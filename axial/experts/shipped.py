"""The experts axial ships for the embedded model (trained with recipes/embedded_default.yaml), and export_expert
which made them: a bf16 copy of a trained adapter, small enough to ship in the wheel (~5 MB per axis)."""

from __future__ import annotations

import json
from pathlib import Path

from axial.errors import AxialError
from axial.io import atomic_output, atomic_write_bytes, atomic_write_json

EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def shipped_experts_dir() -> Path:
    """Folder with one adapter per axis (<dir>/<axis>/adapter_model.safetensors) for the embedded model."""
    path = Path(__file__).resolve().parent.parent / "experts_embedded"
    if not any(path.glob("*/adapter_model.safetensors")):
        raise AxialError(f"no shipped experts in {path}; train them with "
                         "`axial train-experts embedded_default data_root=/path/to/data`")
    return path


def export_expert(src: str | Path, dst: str | Path, *, dtype: str = "bf16", base_model: str | None = None,
                  base: dict | None = None) -> Path:
    """Copy a trained expert to `dst` with its LoRA tensors cast to `dtype` (bf16 halves the size; the LoRA
    product is computed in the base model's dtype anyway). `base_model` rewrites adapter_config.json's
    base_model_name_or_path (a machine-specific cache path for the embedded model) to a portable id, and
    `base` sets the sidecar's base reference (axial.baseref; experts trained by axial already record it)."""
    import torch
    from safetensors.torch import load_file, save_file

    src, dst = Path(src), Path(dst)
    weights = src / "adapter_model.safetensors"
    if not weights.exists():
        raise AxialError(f"{src}: not a trained expert (no adapter_model.safetensors)")
    target = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}.get(dtype)
    if target is None:
        raise AxialError(f"export_expert dtype: '{dtype}'; use bf16, fp16 or fp32")
    dst.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.to(target).contiguous() for k, v in load_file(str(weights)).items()}
    with atomic_output(dst / "adapter_model.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    config = json.loads((src / "adapter_config.json").read_text())
    if base_model:
        config["base_model_name_or_path"] = base_model
    for name in ("train_log.jsonl", "axial_expert.json"):
        if (src / name).exists():
            atomic_write_bytes(dst / name, (src / name).read_bytes())
    if base is not None:
        sidecar = json.loads((dst / "axial_expert.json").read_text()) if (dst / "axial_expert.json").exists() else {}
        sidecar["base"] = base
        atomic_write_json(dst / "axial_expert.json", sidecar)
    # Last: adapter_config.json is what makes the folder an adapter for PEFT and axial.
    atomic_write_json(dst / "adapter_config.json", config)
    return dst
