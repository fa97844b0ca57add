"""The one mixture layer: y = W x + Σ_k g_k · s_k · B_k A_k x, as two matmuls over stacked experts.

PEFT keeps one module per adapter and loops over them (time grows with K; peft#2283) and merges weighted
adapters with A/B cross terms (peft#3004). Here all K experts sit in one A_cat [K*r, in] and one
B_cat [out, K*r] (scaling folded into B), and the weights multiply the K*r intermediate activations:
exact output-level mixing, cost independent of K beyond the matmul width.

On CPU with a half-precision model, the LoRA factors are kept in fp32 and inputs of at most SMALL_ROWS rows
(decoding: one token per sequence) take the LoRA path in fp32, where it costs ~25-33% less than in bf16; wide
inputs (prefill, training) cast the factors to the model's dtype, where fp32 would cost 3-11x more
(benchmarks/lora_path_dtype_cpu.py -> benchmarks/results/routing/lora_path_dtype_cpu.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from axial.errors import AxialError


class RoutingState:
    """Where the MixtureLinears of one model read their weights from (shared, plain object: not a Module).

    Either static `weights` ([K] global, [B, K] per row, [B, T, K] per token) or, while a router is set, the
    per-layer gates [B, T, K] that the decoder-layer pre-hooks write before each block runs.
    """

    def __init__(self):
        self._columns: dict[tuple, tuple[torch.Tensor, int, torch.Tensor]] = {}
        self.weights: torch.Tensor | None = None
        self.routed = False
        self.gates: dict[int, torch.Tensor] = {}

    @property
    def weights(self) -> torch.Tensor | None:
        return self._weights

    @weights.setter
    def weights(self, value: torch.Tensor | None) -> None:
        self._weights = value
        self._columns.clear()  # even if `value` is the tensor set before, changed through .data

    def columns(self, g: torch.Tensor, layer_idx: int | None, r: int, dtype: torch.dtype) -> torch.Tensor:
        """g's expert weights repeated over each expert's r columns, in `dtype`: computed once per weights
        tensor and shared by every MixtureLinear of a layer (7 modules per block read the same gates)."""
        key = (layer_idx, r, dtype)
        hit = self._columns.get(key)
        # Identity (the cache holds g, so a new tensor is never `g`) and version (g changed in place; inference
        # tensors keep no version, but routers make a new gate tensor per call and setting weights clears).
        version = -1 if g.is_inference() else g._version
        if hit is not None and hit[0] is g and hit[1] == version:
            return hit[2]
        cols = g.to(dtype=dtype).repeat_interleave(r, dim=-1)
        self._columns[key] = (g, version, cols)
        return cols

    def weights_for(self, layer_idx: int | None) -> torch.Tensor | None:
        if not self.routed:
            return self.weights
        if layer_idx is None:
            raise AxialError("a router is set, but this mixture module is outside the decoder layers, where no "
                             "hidden state is routed; restrict target_modules to the decoder layers")
        return self.gates[layer_idx]


SMALL_ROWS = 16


class MixtureLinear(nn.Module):
    """Wraps a base nn.Linear (kept as `base_layer`, untouched) with K stacked LoRA experts."""

    def __init__(self, base_layer: nn.Linear, A_cat: torch.Tensor, B_cat: torch.Tensor, scaling: torch.Tensor,
                 r_max: int, state: RoutingState, layer_idx: int | None, name: str = ""):
        super().__init__()
        self.base_layer = base_layer
        w = base_layer.weight
        k = scaling.numel()
        if A_cat.shape != (k * r_max, base_layer.in_features) or B_cat.shape != (base_layer.out_features, k * r_max):
            raise AxialError(f"module '{name}': experts have shape [{B_cat.shape[0]}x{A_cat.shape[1]}], "
                             f"the base linear [{base_layer.out_features}x{base_layer.in_features}]")
        scale_cols = scaling.float().repeat_interleave(r_max)
        store = torch.float32 if w.device.type == "cpu" and w.dtype in (torch.bfloat16, torch.float16) else w.dtype
        # Non-persistent: the model's state_dict (and save_pretrained) stays the base model's.
        self.register_buffer("lora_A", A_cat.to(device=w.device, dtype=store), persistent=False)
        self.register_buffer("lora_B", (B_cat.float() * scale_cols).to(device=w.device, dtype=store),
                             persistent=False)
        self.num_experts, self.r_max, self.layer_idx, self.name = k, r_max, layer_idx, name
        # Not a Module attribute: the state is shared by every MixtureLinear of the model.
        self.__dict__["state"] = state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base_layer(x)
        g = self.state.weights_for(self.layer_idx)
        if g is None:
            return y
        small = x.numel() <= SMALL_ROWS * x.shape[-1]
        dtype = self.lora_A.dtype if small and x.device.type == "cpu" else y.dtype
        A, B = self.lora_A.to(dtype), self.lora_B.to(dtype)  # no-ops unless prefill casts fp32 factors
        h = F.linear(x.to(dtype), A)  # [..., K*r]
        lead = h.shape[:-1]
        cols = self.state.columns(g, self.layer_idx, self.r_max, dtype)  # each expert's weight over its r columns
        if g.dim() == 1 and small:
            h = h * cols
        elif g.dim() == 1:
            B = B * cols  # global weights fold into B ([out, K*r]): cheaper than scaling every row of wide h
        elif g.dim() == 2:  # per row: [B, K] -> [B, 1.., K*r]
            if g.shape[0] != lead[0]:
                raise AxialError(f"mixture weights have {g.shape[0]} rows but the batch has {lead[0]}; per-row "
                                 "weights must match the batch (repeat them for num_return_sequences/beams)")
            h = h * cols.view(g.shape[0], *([1] * (len(lead) - 1)), -1)
        else:
            if tuple(g.shape[:-1]) != tuple(lead):
                raise AxialError(f"per-token mixture weights have shape {list(g.shape)}, the activations "
                                 f"{list(lead)} x K={self.num_experts}")
            h = h * cols
        if dtype != y.dtype:
            return y.add_(F.linear(h, B))  # few rows: the fp32 update, rounded once into y
        if y.is_contiguous():
            # y += h B^T as one in-place addmm: a separate full-size add costs as much as the LoRA matmuls on a
            # CPU with fast bf16 matmuls. Safe for autograd: the base linear does not keep its output.
            y.view(-1, y.shape[-1]).addmm_(h.reshape(-1, h.shape[-1]), B.t())
            return y
        return y + F.linear(h, B)

    def extra_repr(self) -> str:
        return f"experts={self.num_experts}, r_max={self.r_max}, layer={self.layer_idx}"
