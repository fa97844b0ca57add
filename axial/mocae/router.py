"""The MoCaE router: hidden state entering a decoder block -> K expert logits, calibrated.

It plugs into the one mixture layer as a `Routed(router, gate)` source (axial.mixture.routing's `Router`
contract: called as `router(hidden [B,T,H], layer_idx) -> logits [B,T,K]`, then gated by a GateConfig: softmax,
optional top-k, importance γ). This module adds what TrinityX / AlignX stage 2 need on top of that contract:

- heads per layer or one shared head (`scope`), linear or a small MLP (`arch`), over the hidden state
  normalised per token (layer norm without affine): the residual stream's scale grows with depth and a few
  "attention sink" tokens carry huge norms, so raw states would make a shared head and pooling unstable;
- per-token or per-sequence routing (`granularity`). Per-sequence routing mean-pools the prompt's tokens at
  prefill and reuses those logits for every decoded token. The pooling must skip left padding, which the
  decoder block does not see, so the router reads the attention mask from a forward pre-hook on the model
  (`bind(model)`, called by the mixture when it starts routing with the router);
- a calibrator (axial.mocae.calibration) applied to the logits, so the gate's softmax gives calibrated
  probabilities: the router returns log p_calibrated (softmax(log p) = p, so the gate runs at T = 1);
- optionally a fixed set of `allowed` experts (HoE's router experts, axial.hoe): the others' logits are pinned
  at -1e4, so they get exactly zero weight after the softmax, whatever the heads learn;
- optionally a `base_option`: one more logit for "no expert". Its softmax share is dropped, so the expert
  weights sum to less than 1 and a prompt none of the experts serves well can be left to the base model
  (w -> 0). Such a router applies its gate itself (`outputs_weights`): the mixture's softmax would renormalise
  the share away.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from axial.errors import AxialError
from axial.mixture.routing import Router
from axial.mocae.calibration import Calibrator, Identity

SCOPES = ("per_layer", "shared")
GRANULARITIES = ("sequence", "token")
ARCHS = ("linear", "mlp")


class MoCaERouter(Router):
    def __init__(self, hidden_size: int, expert_names: list[str], num_layers: int, *, scope: str = "per_layer",
                 granularity: str = "sequence", arch: str = "linear", mlp_hidden: int = 64,
                 allowed: list[str] | None = None, base_option: bool = False):
        super().__init__()
        for name, value, choices in (("scope", scope, SCOPES), ("granularity", granularity, GRANULARITIES),
                                     ("arch", arch, ARCHS)):
            if value not in choices:
                raise AxialError(f"router {name} '{value}': expected one of {list(choices)}")
        self.expert_names = list(expert_names)
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.scope, self.granularity, self.arch, self.mlp_hidden = scope, granularity, arch, mlp_hidden
        self.base_option = bool(base_option)
        # With a base option the heads emit one more logit (last): the share the base model keeps.
        k, n = len(expert_names) + int(self.base_option), (num_layers if scope == "per_layer" else 1)
        # Heads as stacked tensors, not a ModuleList, so training on cached features runs every layer's head in
        # one einsum.
        width = mlp_hidden if arch == "mlp" else k
        self.w1 = nn.Parameter(torch.randn(n, hidden_size, width) / math.sqrt(hidden_size))
        self.b1 = nn.Parameter(torch.zeros(n, width))
        if arch == "mlp":
            self.w2 = nn.Parameter(torch.randn(n, mlp_hidden, k) / math.sqrt(mlp_hidden))
            self.b2 = nn.Parameter(torch.zeros(n, k))
        self.allowed = None if allowed is None else list(allowed)
        if self.allowed is not None:
            bad = [a for a in self.allowed if a not in self.expert_names]
            if bad or not self.allowed:
                raise AxialError(f"router allowed experts {self.allowed}: must be a non-empty subset of "
                                 f"{self.expert_names}")
        # Not saved with the weights: rebuilt from `allowed` in the router's config.
        self.register_buffer("_blocked", torch.tensor([self.allowed is not None and n not in self.allowed
                                                       for n in self.expert_names] + [False] * self.base_option),
                             persistent=False)
        # The gate a base-option router applies itself (load_router / training set it; default: softmax).
        self.gate = None
        self.calibrator: Calibrator = Identity()
        self._mask: torch.Tensor | None = None
        self._explicit_mask = False
        self._decoding = False
        self._pooled: dict[int, torch.Tensor] = {}
        self._bind_handle = None
        self._bound_to: nn.Module | None = None
        # When not None, forward() stores each layer's raw (uncalibrated) logits here: calibration and
        # LM-loss training read the routing decisions the model actually made.
        self.recorded: dict[int, torch.Tensor] | None = None

    @property
    def num_experts(self) -> int:
        return len(self.expert_names)

    def config(self) -> dict:
        out = {"hidden_size": self.hidden_size, "expert_names": self.expert_names, "num_layers": self.num_layers,
               "scope": self.scope, "granularity": self.granularity, "arch": self.arch, "mlp_hidden": self.mlp_hidden}
        if self.allowed is not None:
            out["allowed"] = self.allowed
        if self.base_option:
            out["base_option"] = True
        return out

    @property
    def outputs_weights(self) -> bool:  # type: ignore[override]
        return self.base_option

    def base_gate(self, cal: torch.Tensor) -> torch.Tensor:
        """Expert weights [..., K] from the K+1 (calibrated) logits of a base-option router: softmax over all
        K+1, top-k among them, the base's share dropped, then the experts' importance γ."""
        from axial.mixture.routing import GateConfig

        gate = self.gate or GateConfig()
        p = torch.softmax(cal.float() / gate.temperature, dim=-1)
        if gate.top_k and gate.top_k < p.shape[-1]:
            top = p.topk(gate.top_k, dim=-1)
            p = torch.zeros_like(p).scatter(-1, top.indices, top.values)
            p = p / p.sum(-1, keepdim=True)
        p = p[..., :-1]
        if gate.importance is not None:
            p = p * torch.tensor(gate.importance, dtype=p.dtype, device=p.device)
        return p

    BLOCKED_LOGIT = -1e4

    def _restrict(self, logits: torch.Tensor) -> torch.Tensor:
        if self.allowed is None:
            return logits
        return logits.masked_fill(self._blocked.to(logits.device), self.BLOCKED_LOGIT)

    # ---- heads ---------------------------------------------------------------------------------------
    @staticmethod
    def normalise(hidden: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(hidden.float(), (hidden.shape[-1],))

    def head_logits(self, x: torch.Tensor, layer_idx: int) -> torch.Tensor:
        """Raw logits [..., K] of normalised features x [..., H] at one layer."""
        i = 0 if self.scope == "shared" else layer_idx
        h = x @ self.w1[i] + self.b1[i]
        if self.arch == "mlp":
            h = F.gelu(h) @ self.w2[i] + self.b2[i]
        return self._restrict(h)

    def all_layer_logits(self, feats: torch.Tensor) -> torch.Tensor:
        """Raw logits [..., L, K] for features [..., L, H] holding one normalised vector per layer."""
        if self.scope == "shared":
            return self.head_logits(feats, 0)
        h = torch.einsum("...lh,lhw->...lw", feats, self.w1) + self.b1
        if self.arch == "mlp":
            h = torch.einsum("...lm,lmk->...lk", F.gelu(h), self.w2) + self.b2
        return self._restrict(h)

    # ---- calibration ---------------------------------------------------------------------------------
    def calibrated(self, logits: torch.Tensor, layer_idx: int) -> torch.Tensor:
        if isinstance(self.calibrator, Identity):
            return logits
        p = self.calibrator.probs(logits.reshape(-1, logits.shape[-1]).double())
        return p.clamp_min(1e-12).log().to(logits.dtype).reshape(logits.shape)

    # ---- the mixture's router contract -----------------------------------------------------------------
    def forward(self, hidden: torch.Tensor, layer_idx: int) -> torch.Tensor:
        b, t, _ = hidden.shape
        if self.granularity == "token":
            z = self.head_logits(self.normalise(hidden), layer_idx)
            cal = self.calibrated(z, layer_idx)
        else:
            z, cal = self._sequence_logits(hidden, layer_idx)
            z, cal = z.expand(b, t, -1), cal.expand(b, t, -1)
        if self.recorded is not None:
            self.recorded[layer_idx] = z
        return self.base_gate(cal) if self.base_option else cal

    def _sequence_logits(self, hidden: torch.Tensor, layer_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw, calibrated) logits [B, 1, K]; computed at prefill, reused by every decoding step."""
        cached = self._pooled.get(layer_idx)
        if self._decoding and cached is not None and cached[0].shape[0] == hidden.shape[0]:
            return cached
        if not (self._bound_to is not None or self._explicit_mask):
            raise AxialError("a per-sequence router needs the attention mask to pool the prompt: attach it with "
                             "load_router(DIR, mixture) or router.bind(model)")
        mask = self._mask
        if mask is None or tuple(mask.shape) != tuple(hidden.shape[:2]):
            raise AxialError(f"per-sequence router: attention mask {None if mask is None else list(mask.shape)} "
                             f"does not match the hidden states {list(hidden.shape[:2])}")
        m = mask.to(device=hidden.device, dtype=torch.float32)[..., None]
        pooled = (self.normalise(hidden) * m).sum(1) / m.sum(1).clamp_min(1.0)
        z = self.head_logits(pooled, layer_idx)[:, None, :]
        self._pooled[layer_idx] = (z, self.calibrated(z, layer_idx))
        return self._pooled[layer_idx]

    # ---- sequence state --------------------------------------------------------------------------------
    def bind(self, model: nn.Module) -> None:
        """Read the attention mask and cache length of every call of `model` (idempotent per model)."""
        if self._bound_to is model:
            return
        if self._bind_handle is not None:
            self._bind_handle.remove()

        def hook(_module, args, kwargs):
            if self._explicit_mask:
                return None
            pkv = kwargs.get("past_key_values")
            prefill = pkv is None or pkv.get_seq_length() == 0
            if prefill:
                ids = kwargs.get("input_ids", args[0] if args else None)
                if ids is None:
                    ids = kwargs["inputs_embeds"]
                mask = kwargs.get("attention_mask")
                self._mask = torch.ones(ids.shape[:2], dtype=torch.bool) if mask is None else mask.bool()
                self._pooled.clear()
            self._decoding = not prefill
            return None

        self._bind_handle = model.register_forward_pre_hook(hook, with_kwargs=True)
        self._bound_to = model

    def unbind(self) -> None:
        if self._bind_handle is not None:
            self._bind_handle.remove()
        self._bind_handle, self._bound_to = None, None

    @contextlib.contextmanager
    def pool_over(self, mask: torch.Tensor):
        """Pool over `mask` [B, T] (e.g. the prompt part of prompt+response) instead of the attention mask."""
        self._mask, self._explicit_mask, self._decoding = mask.bool(), True, False
        self._pooled.clear()
        try:
            yield self
        finally:
            self._explicit_mask = False
            self._pooled.clear()

    @contextlib.contextmanager
    def recording(self):
        self.recorded = {}
        try:
            yield self.recorded
        finally:
            self.recorded = None


def task_vector_importance(experts) -> list[float]:
    """TrinityX's γ: cosine of each expert's task vector τ_k = (s_k B_k A_k over all modules, flattened) with
    the mean task vector, divided by the mean cosine (so mean γ = 1 and a full mixture keeps its scale).

    <B_i A_i, B_j A_j>_F = tr((B_i^T B_j)(A_j A_i^T)) uses only r×r products, so the 100M-entry task vectors of
    even a small model are never materialised. Negative cosines (an expert opposing the consensus) give γ = 0.
    """
    names = experts.names
    k = len(names)
    gram = torch.zeros(k, k, dtype=torch.float64)
    for module in experts.module_names:
        facs = [e.factors.get(module) for e in experts]
        for i, fi in enumerate(facs):
            for j in range(i, k):
                fj = facs[j]
                if fi is None or fj is None:
                    continue
                bb = fi.B.double().T @ fj.B.double()
                aa = fj.A.double() @ fi.A.double().T
                v = fi.scaling * fj.scaling * torch.trace(bb @ aa)
                gram[i, j] += v
                if i != j:
                    gram[j, i] += v
    norms = gram.diagonal().clamp_min(1e-30).sqrt()
    dot_mean = gram.mean(1)  # <τ_k, mean τ>
    mean_norm = gram.mean().clamp_min(1e-30).sqrt()
    cos = (dot_mean / (norms * mean_norm)).clamp_min(0.0)
    if float(cos.sum()) == 0.0:
        raise AxialError("task-vector importance: every expert's task vector is orthogonal to or opposes the "
                         "mean; use importance=none")
    return (cos / cos.mean()).tolist()
