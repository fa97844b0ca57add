"""Random (non-zero) PEFT LoRA adapters written by PEFT itself: fixtures for tests and speed benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

from axial.mixture.experts import SIDECAR


def write_random_adapter(model_factory, folder: str | Path, *, seed: int = 0, axis: str | None = None,
                         **lora_kwargs) -> Path:
    """Wrap a fresh model from `model_factory()` with `peft.get_peft_model`, B initialised non-zero
    (init_lora_weights=False: PEFT's default B=0 would make every expert equal the base), and save it.

    `lora_kwargs` go to `peft.LoraConfig` (r, lora_alpha, target_modules, use_rslora, ...).
    """
    import torch
    from peft import LoraConfig, get_peft_model

    folder = Path(folder)
    model = model_factory()
    torch.manual_seed(seed)
    lora_kwargs.setdefault("init_lora_weights", False)
    peft_model = get_peft_model(model, LoraConfig(**lora_kwargs))
    peft_model.save_pretrained(folder)
    if axis is not None:
        (folder / SIDECAR).write_text(json.dumps({"axis": axis}) + "\n")
    return folder
