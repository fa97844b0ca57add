"""The router interface: how input-dependent expert weights get into the mixture layer.

A router is any nn.Module called as `router(hidden, layer_idx) -> logits` with hidden [B, T, H] (the hidden
state entering decoder block `layer_idx`) and logits [B, T, K]. The Mixture calls it from a forward pre-hook
on every decoder block, turns the logits into weights with a `GateConfig` (softmax(z / T), optional top-k,
importance γ) and the block's MixtureLinears read them. One router may serve all blocks (ignore layer_idx)
or hold one head per block (`LinearRouter(num_layers=...)`). A router whose output already is weights (e.g.
HoE's preference routing, which mixes several gated routers) sets `produces_weights = True` and the gate is
skipped. During cached decoding T = 1: the router sees the current token's hidden state only, so a router
that pools over the sequence must keep its own running state.

Router *training* and calibration live in axial.mocae; this module only defines the contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from axial.config import Config
from axial.errors import AxialError


@dataclass
class GateConfig(Config):
    """Logits -> expert weights: p = softmax(z / temperature); keep top_k (renormalised); multiply by γ."""

    temperature: float = 1.0
    top_k: int = 0  # 0 = soft over all experts
    # TrinityX's per-expert importance γ_k, multiplied after the softmax; None = all 1.
    importance: list[float] | None = None

    def validate(self) -> None:
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise AxialError(f"GateConfig.temperature: must be a positive number, got {self.temperature}")
        if self.top_k < 0:
            raise AxialError(f"GateConfig.top_k: must be >= 0, got {self.top_k}")
        if self.importance is not None and not all(math.isfinite(g) and g >= 0 for g in self.importance):
            raise AxialError(f"GateConfig.importance: must be finite and non-negative, got {self.importance}")

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        k = logits.shape[-1]
        p = torch.softmax(logits.float() / self.temperature, dim=-1)
        if self.top_k and self.top_k < k:
            top = p.topk(self.top_k, dim=-1)
            p = torch.zeros_like(p).scatter(-1, top.indices, top.values)
            p = p / p.sum(-1, keepdim=True)
        if self.importance is not None:
            if len(self.importance) != k:
                raise AxialError(f"GateConfig.importance: {len(self.importance)} values for {k} experts")
            p = p * torch.tensor(self.importance, dtype=p.dtype, device=p.device)
        return p


class LinearRouter(nn.Module):
    """The simplest router: a linear map of the hidden state to K logits, shared or one per layer."""

    def __init__(self, hidden_size: int, num_experts: int, num_layers: int | None = None):
        super().__init__()
        n = 1 if num_layers is None else num_layers
        self.shared = num_layers is None
        self.heads = nn.ModuleList(nn.Linear(hidden_size, num_experts) for _ in range(n))
        for h in self.heads:  # start uniform: zero logits = equal weights before any training
            nn.init.zeros_(h.weight)
            nn.init.zeros_(h.bias)

    def forward(self, hidden: torch.Tensor, layer_idx: int) -> torch.Tensor:
        head = self.heads[0 if self.shared else layer_idx]
        return head(hidden.to(head.weight.dtype))
