"""Expert weights: LoRA factors per target module, loaded from PEFT adapter folders or built by SVD.

An expert is a set of low-rank updates ΔW = s · B A, one per target linear of the base model, keyed by the
module's name in `base_model.named_modules()` (e.g. `model.layers.0.self_attn.q_proj`). Experts stay plain
PEFT adapters on disk; this module reads and writes that format itself because PEFT has no API that returns
an adapter's factors without wrapping the whole model.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from axial.config import read_json_object
from axial.errors import AxialError, DataError
from axial.io import atomic_output, atomic_write_json

log = logging.getLogger(__name__)

SIDECAR = "axial_expert.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])\.weight$")


@dataclass
class LoraFactors:
    """One module's update ΔW = scaling · B @ A (A: [r, in], B: [out, r])."""

    A: torch.Tensor
    B: torch.Tensor
    scaling: float

    @property
    def rank(self) -> int:
        return self.A.shape[0]

    def delta(self) -> torch.Tensor:
        return self.scaling * (self.B.float() @ self.A.float())


@dataclass
class Expert:
    name: str
    factors: dict[str, LoraFactors]
    source: str = ""
    # The sidecar's content: "axis", for merged experts the anchor "preference", and the "base" reference
    # (axial.baseref) of the model it was made on.
    meta: dict = field(default_factory=dict)

    @property
    def base(self) -> dict | None:
        return self.meta.get("base") or None


class ExpertSet:
    """K named experts; `stacked(module)` gives the tensors the mixture layer multiplies with."""

    def __init__(self, experts: Sequence[Expert]):
        self.experts = list(experts)
        if not self.experts:
            raise AxialError("an expert set needs at least one expert")
        names = [e.name for e in self.experts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise AxialError(f"duplicate expert name(s) {dupes} (sources: {[e.source for e in self.experts]}); "
                             f"rename with names=[...] or set 'axis' in each adapter's {SIDECAR}")

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.experts]

    def __len__(self) -> int:
        return len(self.experts)

    def __iter__(self):
        return iter(self.experts)

    def __getitem__(self, name: str) -> Expert:
        for e in self.experts:
            if e.name == name:
                return e
        raise AxialError(f"unknown expert '{name}'; experts: {self.names}")

    def __add__(self, other: ExpertSet) -> ExpertSet:
        return ExpertSet(self.experts + other.experts)

    @property
    def module_names(self) -> list[str]:
        return sorted({m for e in self.experts for m in e.factors})

    def stacked(self, module: str, *, dtype=None, device=None):
        """(A_cat [K*r_max, in], B_cat [out, K*r_max], scaling [K], r_max) for one module.

        Ranks are padded to r_max with zero rows/columns (exact: they add nothing), and an expert that does
        not touch this module contributes an all-zero block, so every expert keeps the same column slot.
        """
        present = [e.factors.get(module) for e in self.experts]
        ref = next(f for f in present if f is not None)
        r_max = max(f.rank for f in present if f is not None)
        k = len(present)
        out_f, in_f = ref.B.shape[0], ref.A.shape[1]
        A = torch.zeros(k, r_max, in_f, dtype=torch.float32)
        B = torch.zeros(out_f, k, r_max, dtype=torch.float32)
        scaling = torch.zeros(k)
        for i, f in enumerate(present):
            if f is None:
                continue
            if f.A.shape[1] != in_f or f.B.shape[0] != out_f:
                raise AxialError(f"module '{module}': expert '{self.experts[i].name}' has shape "
                                 f"[{f.B.shape[0]}x{f.A.shape[1]}], others [{out_f}x{in_f}]")
            A[i, : f.rank] = f.A.float()
            B[:, i, : f.rank] = f.B.float()
            scaling[i] = f.scaling
        A, B = A.reshape(k * r_max, in_f), B.reshape(out_f, k * r_max)
        return A.to(dtype=dtype, device=device), B.to(dtype=dtype, device=device), scaling, r_max


def _alpha_for(module: str, config: dict) -> float:
    from peft.utils.other import get_pattern_key

    pattern = config.get("alpha_pattern") or {}
    key = get_pattern_key(pattern.keys(), module)
    return float(pattern.get(key, config["lora_alpha"]))


def check_adapter_folder(path: str | Path) -> Path:
    """A local PEFT adapter folder with adapter_config.json and safetensors weights, or an AxialError saying
    what is missing. Every adapter axial loads passes through here, so the message is the same everywhere
    (serve, chat, eval, training's init_adapter). A pickled adapter_model.bin is refused: weights load from
    safetensors only."""
    folder = Path(path)
    if not folder.exists():
        raise AxialError(f"expert '{folder}': does not exist (expected a local PEFT LoRA adapter folder)")
    if not (folder / ADAPTER_CONFIG).is_file():
        raise AxialError(f"expert '{folder}': no {ADAPTER_CONFIG} (expected a PEFT LoRA adapter folder)")
    if not (folder / ADAPTER_WEIGHTS).is_file():
        other = " (found adapter_model.bin: convert it to safetensors)" if (folder / "adapter_model.bin").exists() else ""
        raise AxialError(f"expert '{folder}': no {ADAPTER_WEIGHTS}{other}")
    return folder


def load_lora_expert(path: str | Path, name: str | None = None) -> Expert:
    """Read a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)."""
    from safetensors.torch import load_file

    folder = check_adapter_folder(path)
    cfg_path = folder / ADAPTER_CONFIG
    config = read_json_object(cfg_path)
    peft_type = config.get("peft_type")
    if peft_type != "LORA":
        raise DataError(f"peft_type {peft_type!r} is not supported; only LoRA adapters can be mixed",
                        path=str(cfg_path), field="peft_type")
    # Each refused option changes the layer's computation beyond W x + s·B A x, so mixing it as plain LoRA
    # would be silently wrong.
    refused = {"use_dora": "DoRA rescales W itself", "fan_in_fan_out": "transposed (Conv1D) weights",
               "lora_bias": "LoRA bias terms", "modules_to_save": "fully trained modules",
               "layer_replication": "replicated layers", "trainable_token_indices": "trained token rows"}
    for key, why in refused.items():
        if config.get(key):
            raise DataError(f"{key}={config[key]!r} ({why}) is not supported by the mixture layer",
                            path=str(cfg_path), field=key)
    weights_path = folder / ADAPTER_WEIGHTS
    tensors = load_file(str(weights_path))
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        m = _KEY.match(key)
        if m is None:
            raise DataError(f"tensor '{key}' is not a LoRA A/B matrix of a linear layer "
                            "(embedding LoRA, DoRA magnitudes and saved modules are not supported)",
                            path=str(weights_path))
        pairs.setdefault(m["module"], {})[m["ab"]] = value
    factors = {}
    rslora = bool(config.get("use_rslora"))
    for module, ab in sorted(pairs.items()):
        if set(ab) != {"A", "B"}:
            raise DataError(f"module '{module}' has lora_{''.join(ab)} but not both A and B", path=str(weights_path))
        A, B = ab["A"], ab["B"]
        if A.dim() != 2 or B.dim() != 2 or A.shape[0] != B.shape[1]:
            raise DataError(f"module '{module}': lora_A {list(A.shape)} and lora_B {list(B.shape)} do not form "
                            "a rank-r product", path=str(weights_path))
        r, alpha = A.shape[0], _alpha_for(module, config)
        scaling = alpha / math.sqrt(r) if rslora else alpha / r
        factors[module] = LoraFactors(A, B, scaling)
    if not factors:
        raise AxialError(f"expert '{folder}': {ADAPTER_WEIGHTS} holds no LoRA weights")
    meta = read_json_object(folder / SIDECAR) if (folder / SIDECAR).is_file() else {}
    if "base" in meta and not isinstance(meta["base"], dict):
        raise DataError(f"must be a base reference object, got {meta['base']!r}", path=str(folder / SIDECAR),
                        field="base")
    if not meta.get("base") and config.get("base_model_name_or_path"):
        # An adapter made outside axial: only PEFT's name for its base is known (compared by name, warn-only).
        meta["peft_base_name"] = config["base_model_name_or_path"]
    if name is None:
        for key in ("name", "axis"):
            if key in meta and not isinstance(meta[key], str):
                raise DataError(f"must be a string, got {meta[key]!r}", path=str(folder / SIDECAR), field=key)
        name = meta.get("name") or meta.get("axis") or folder.name
    return Expert(name=name, factors=factors, source=str(folder), meta=meta)


def load_experts(items: Iterable[str | Path | Expert | ExpertSet], names: Sequence[str] | None = None, *,
                 allow_base_mismatch: bool = False) -> ExpertSet:
    """Adapter folders, Expert objects and ExpertSets, in order, as one ExpertSet (optionally renamed).

    Experts recorded on different base models are refused (`allow_base_mismatch=True` only warns): mixing
    them cannot be right on any one base.
    """
    if isinstance(items, (str, Path)):
        items = [items]
    experts: list[Expert] = []
    for item in items:
        if isinstance(item, ExpertSet):
            experts.extend(item.experts)
        elif isinstance(item, Expert):
            experts.append(item)
        else:
            experts.append(load_lora_expert(item))
    if names is not None:
        if len(names) != len(experts):
            raise AxialError(f"names: {len(names)} given for {len(experts)} experts")
        experts = [Expert(n, e.factors, e.source, e.meta) for n, e in zip(names, experts, strict=True)]
    _check_same_base(experts, allow_base_mismatch)
    return ExpertSet(experts)


def _check_same_base(experts: Sequence[Expert], allow: bool) -> None:
    from axial.baseref import describe, refuse_or_warn, same_recorded_base

    recorded = [e for e in experts if e.base]
    for other in recorded[1:]:
        if same_recorded_base(recorded[0].base, other.base) is False:
            refuse_or_warn(f"experts '{recorded[0].name}' ({recorded[0].source}) and '{other.name}' ({other.source}) "
                           f"were made on different bases: {describe(recorded[0].base)} vs {describe(other.base)}",
                           allow)


def truncated_lora(delta: torch.Tensor, rank: int) -> tuple[LoraFactors, float]:
    """Best rank-r approximation of ΔW as LoRA factors (scaling 1), and the relative Frobenius error."""
    U, S, Vh = torch.linalg.svd(delta.float(), full_matrices=False)
    r = min(rank, S.numel())
    root = S[:r].sqrt()
    total = float(S.double().square().sum())
    err = math.sqrt(float(S[r:].double().square().sum()) / total) if total > 0 else 0.0
    return LoraFactors(A=root[:, None] * Vh[:r], B=U[:, :r] * root, scaling=1.0), err


def _linear_modules(model, target_modules: Sequence[str] | None) -> dict[str, torch.nn.Linear]:
    from axial.arch import find_decoder_layers

    stack = find_decoder_layers(model) if target_modules is None else None
    out = {}
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        if target_modules is None:
            # Default: every linear inside the decoder blocks; the (often tied) lm_head is left alone.
            if stack.index_of(name) is None:
                continue
        elif not any(name == t or name.endswith("." + t) for t in target_modules):
            continue
        out[name] = mod
    return out


def experts_from_finetuned(base_model, finetuned, rank: int, *, name: str | None = None,
                           target_modules: Sequence[str] | None = None) -> Expert:
    """HoE's compression: a full fine-tuned model's task vector θ_ft − θ_base, per linear, truncated by SVD.

    `finetuned` is a model spec (folder, hub id) or an already loaded model. Parameters outside the target
    linears (embeddings, norms) cannot be expressed as LoRA; their share of the task vector is logged and
    kept in `meta["untracked_delta_fraction"]` so a user sees what the compression dropped.
    """
    if rank < 1:
        raise AxialError(f"experts_from_finetuned: rank must be >= 1, got {rank}")
    source = ""
    if isinstance(finetuned, (str, Path)):
        from transformers import AutoModelForCausalLM

        from axial.models import resolve_model_path

        source = str(finetuned)
        # Weights only: a fine-tuned checkpoint need not carry a tokenizer.
        finetuned = AutoModelForCausalLM.from_pretrained(resolve_model_path(source), dtype=torch.float32,
                                                         use_safetensors=True)
    base_params = dict(base_model.named_parameters())
    ft_params = dict(finetuned.named_parameters())
    missing = sorted(set(base_params) ^ set(ft_params))
    if missing:
        raise AxialError(f"experts_from_finetuned: the fine-tuned model's parameters differ from the base's "
                         f"(first: {missing[:3]}); it must be a fine-tune of the same architecture")
    targets = _linear_modules(base_model, target_modules)
    if not targets:
        raise AxialError(f"experts_from_finetuned: no linear modules match target_modules={target_modules}")
    factors, errors = {}, []
    tracked_sq = untracked_sq = 0.0
    target_weights = {f"{n}.weight" for n in targets}
    for pname, p in base_params.items():
        d = ft_params[pname].detach().float().cpu() - p.detach().float().cpu()
        sq = float(d.square().sum())
        if pname not in target_weights:
            untracked_sq += sq
            continue
        tracked_sq += sq
        if sq == 0.0:
            continue
        f, err = truncated_lora(d, rank)
        factors[pname[: -len(".weight")]] = f
        errors.append(err)
    if not factors:
        raise AxialError("experts_from_finetuned: the fine-tuned model equals the base on every target linear")
    total = tracked_sq + untracked_sq
    untracked = untracked_sq / total if total else 0.0
    if untracked > 0:
        log.warning("experts_from_finetuned: %.1f%% of the task vector's squared norm lies outside the target "
                    "linears and is not represented by the LoRA expert", 100 * untracked)
    from axial.baseref import base_reference

    meta = {"svd_rank": rank, "mean_relative_error": sum(errors) / len(errors),
            "max_relative_error": max(errors), "untracked_delta_fraction": untracked,
            "base": base_reference(base_model)}
    return Expert(name=name or (Path(source).name if source else "finetuned"), factors=factors,
                  source=source, meta=meta)


def save_expert(expert: Expert, folder: str | Path, *, base_model_name: str | None = None,
                dtype: str | torch.dtype | None = None) -> Path:
    """Write an expert as a plain PEFT LoRA adapter (+ sidecar) that PEFT, vLLM and `load_lora_expert` read.

    The scaling is folded into B and lora_alpha set equal to each module's rank, so the file is exact for any
    loader regardless of how it computes scaling; differing ranks go into rank_pattern / alpha_pattern.
    `base_model_name` (adapter_config.json's base_model_name_or_path) defaults to what the expert's recorded
    base resolves to portably (axial.baseref.peft_base_name); `dtype` (default fp32) is the tensors' dtype
    on disk (`axial export` passes the base's dtype).
    """
    from safetensors.torch import save_file

    from axial.baseref import peft_base_name

    if base_model_name is None:
        base_model_name = peft_base_name(expert.base)
    target = _storage_dtype(dtype)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ranks = {m: f.rank for m, f in expert.factors.items()}
    r = max(set(ranks.values()), key=list(ranks.values()).count)
    pattern = {m: rk for m, rk in ranks.items() if rk != r}
    tensors = {}
    for m, f in expert.factors.items():
        tensors[f"base_model.model.{m}.lora_A.weight"] = f.A.detach().float().to(target).contiguous()
        tensors[f"base_model.model.{m}.lora_B.weight"] = (f.scaling * f.B.detach().float()).to(target).contiguous()
    with atomic_output(folder / ADAPTER_WEIGHTS) as tmp:
        save_file(tensors, str(tmp))
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_model_name,
        "r": r, "lora_alpha": r, "rank_pattern": pattern, "alpha_pattern": dict(pattern),
        "target_modules": sorted(expert.factors), "use_rslora": False, "use_dora": False,
        "fan_in_fan_out": False, "bias": "none", "lora_dropout": 0.0, "inference_mode": True,
        "init_lora_weights": True, "modules_to_save": None,
    }
    meta = dict(expert.meta)
    meta["name"] = expert.name
    atomic_write_json(folder / SIDECAR, meta, sort_keys=True, default=str)
    # Last: adapter_config.json is what makes the folder an adapter (for PEFT and load_lora_expert).
    atomic_write_json(folder / ADAPTER_CONFIG, config)
    return folder


def _storage_dtype(dtype) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if str(dtype) not in table:
        raise AxialError(f"dtype {dtype!r}: use fp32, bf16 or fp16")
    return table[str(dtype)]
