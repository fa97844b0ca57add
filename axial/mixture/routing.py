"""The router contract: how input-dependent expert weights get into the mixture layer.

A router is a `Router` (an nn.Module) called as `router(hidden, layer_idx)` with hidden [B, T, H] (the hidden
state entering decoder block `layer_idx`); it returns [B, T, K]. The Mixture calls it from a forward pre-hook
on every decoder block and the block's MixtureLinears read the result. By default the result is logits, turned
into weights by the source's `GateConfig` (softmax(z / T), optional top-k, importance γ); a router whose output
already is weights (HoE's preference routing, which mixes several gated routers; a batch of per-row sources)
says so with `outputs_weights = True` and the gate is skipped. One router may serve all blocks (ignore
layer_idx) or hold one head per block (`LinearRouter(num_layers=...)`). During cached decoding T = 1: the
router sees the current token's hidden state only, so a router that pools over the sequence must keep its own
running state — which is what `bind` (see every call of the model) and `pool_over` (pool over given positions,
e.g. the prompt of a prompt+answer being scored) are for. Both are explicit hooks with no-op defaults, so
callers never probe attributes.

Router *training* and calibration live in axial.mocae; this module only defines the contract.
"""

from __future__ import annotations

import contextlib
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


class Router(nn.Module):
    """Base class of every router a Mixture routes with.

    Subclasses implement `forward(hidden [B, T, H], layer_idx) -> [B, T, K]` and override the hooks they need.
    """

    #: True: forward returns expert weights, used as they are; False: logits, gated by the GateConfig.
    outputs_weights: bool = False
    #: The experts the router was trained for, in order (checked against the mixture); None = any.
    expert_names: list[str] | None = None

    def bind(self, model: nn.Module) -> None:
        """Called when a mixture starts routing `model` with this router (idempotent; default: nothing)."""

    def unbind(self) -> None:
        """Called when the mixture stops routing with this router (default: nothing)."""

    def pool_over(self, mask) -> contextlib.AbstractContextManager:
        """Route from the positions in `mask` [B, T] only, for the duration (default: routing is per token,
        nothing to pool)."""
        return contextlib.nullcontext(self)


class LinearRouter(Router):
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


class RowsRouter(Router):
    """One batch, one source per row: static rows keep their fixed weights, routed rows take their router's.

    Each distinct router runs once on the whole batch (its rows are then picked), so per-sequence routers pool
    with the batch's own attention mask; routers are a few linear heads, so the extra rows cost little.
    """

    outputs_weights = True

    def __init__(self, static: torch.Tensor, groups: list[tuple[Router, GateConfig, list[int]]]):
        super().__init__()
        self.register_buffer("static", static, persistent=False)  # [B, K]; zeros on routed rows
        self.routers = nn.ModuleList(r for r, _, _ in groups)
        self.gates = [g for _, g, _ in groups]
        self.rows = [torch.tensor(rows, dtype=torch.long) for _, _, rows in groups]

    def bind(self, model: nn.Module) -> None:
        for r in self.routers:
            r.bind(model)

    def unbind(self) -> None:
        for r in self.routers:
            r.unbind()

    @contextlib.contextmanager
    def pool_over(self, mask):
        with contextlib.ExitStack() as stack:
            for r in self.routers:
                stack.enter_context(r.pool_over(mask))
            yield self

    def forward(self, hidden: torch.Tensor, layer_idx: int) -> torch.Tensor:
        b, t = hidden.shape[:2]
        if self.static.shape[0] != b:
            raise AxialError(f"{self.static.shape[0]} per-row sources for a batch of {b} rows (repeat them for "
                             "num_return_sequences/beams)")
        w = self.static[:, None, :].to(hidden.device).expand(b, t, -1).clone()
        for router, gate, rows in zip(self.routers, self.gates, self.rows, strict=True):
            out = router(hidden, layer_idx)
            out = out if router.outputs_weights else gate(out)
            rows = rows.to(hidden.device)
            w[rows] = out[rows].to(w.dtype)
        return w
