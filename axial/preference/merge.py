"""HoE's multi-objective LoRA experts: merge the axis experts' task vectors at an anchor preference with
TIES / DARE (PEFT's merge_utils) and compress the result back to a rank-r LoRA by truncated SVD.

A linear mix of task vectors is already exact in the mixture layer; the non-linear merges are what fill the
mid-front points a linear combination misses, so they become extra experts the preference router can pick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from axial.config import Config
from axial.errors import AxialError
from axial.mixture.experts import Expert, ExpertSet, truncated_lora
from axial.preference.preference import Preference

METHODS = ("linear", "ties", "dare_linear", "dare_ties")


@dataclass
class MergeConfig(Config):
    method: str = "ties"
    density: float = 0.5  # fraction of each task vector kept by TIES / DARE pruning
    rank: int = 0  # 0 = the largest input rank
    majority_sign_method: str = "total"
    seed: int = 0  # DARE's random pruning

    def validate(self) -> None:
        if self.method not in METHODS:
            raise AxialError(f"MergeConfig.method: {self.method!r}; use one of {list(METHODS)}")
        if not 0 < self.density <= 1:
            raise AxialError(f"MergeConfig.density: must be in (0, 1], got {self.density}")
        if self.rank < 0:
            raise AxialError(f"MergeConfig.rank: must be >= 0, got {self.rank}")
        if self.majority_sign_method not in ("total", "frequency"):
            raise AxialError(f"MergeConfig.majority_sign_method: use total or frequency, got "
                             f"{self.majority_sign_method!r}")


def _merge(tensors: list[torch.Tensor], weights: torch.Tensor, cfg: MergeConfig) -> torch.Tensor:
    from peft.utils import merge_utils

    if cfg.method == "linear":
        return merge_utils.task_arithmetic(tensors, weights)
    if cfg.method == "ties":
        return merge_utils.ties(tensors, weights, cfg.density, cfg.majority_sign_method)
    if cfg.method == "dare_linear":
        return merge_utils.dare_linear(tensors, weights, cfg.density)
    return merge_utils.dare_ties(tensors, weights, cfg.density, cfg.majority_sign_method)


def merge_experts(experts: ExpertSet, preference: Preference, config: MergeConfig | None = None,
                  *, name: str | None = None) -> Expert:
    """One expert = SVD_r(Merge({s_k B_k A_k}, λ)) per module, for the experts named by the preference's axes.

    For `ties` / `dare_ties`, PEFT takes the disjoint MEAN of the λ-weighted task vectors, so λ acts as a
    per-expert scale: λ = 1 for each expert is a standard TIES merge, and a normalised λ (summing to 1) over n
    experts gives 1/n of it. (Kept as PEFT defines it; pass unnormalised weights for standard TIES anchors.)
    """
    cfg = config or MergeConfig()
    lam = dict(zip(preference.axes, preference.values, strict=True))
    chosen = [e for e in experts if lam.get(e.name, 0.0) > 0]
    missing = [a for a, v in lam.items() if v > 0 and a not in experts.names]
    if missing:
        raise AxialError(f"merge_experts: preference field(s) {missing} have no expert; experts: {experts.names}")
    rank = cfg.rank or max(f.rank for e in chosen for f in e.factors.values())
    weights = torch.tensor([lam[e.name] for e in chosen])
    torch.manual_seed(cfg.seed)
    factors, errors = {}, []
    for module in sorted({m for e in chosen for m in e.factors}):
        ref = next(e.factors[module] for e in chosen if module in e.factors)
        shape = (ref.B.shape[0], ref.A.shape[1])
        tensors = [e.factors[module].delta() if module in e.factors else torch.zeros(shape) for e in chosen]
        merged = _merge(tensors, weights, cfg)
        if not merged.any():
            continue
        factors[module], err = truncated_lora(merged, rank)
        errors.append(err)
    if not factors:
        raise AxialError(f"merge_experts: the {cfg.method} merge at {preference} is zero on every module")
    tag = "_".join(f"{a}{v:.2f}" for a, v in lam.items() if v > 0)
    meta = {"preference": preference.as_dict(), "merge": cfg.to_dict(), "svd_rank": rank,
            "mean_relative_error": sum(errors) / len(errors), "sources": [e.source or e.name for e in chosen]}
    base = next((e.base for e in chosen if e.base), None)
    if base is not None:  # load_experts already refused experts recorded on different bases
        meta["base"] = base
    return Expert(name=name or f"{cfg.method}_{tag}", factors=factors, meta=meta)


def anchor_experts(experts: ExpertSet, anchors: Sequence[Preference], config: MergeConfig | None = None) -> ExpertSet:
    """Merged experts at each anchor preference (HoE's multi-objective LoRA experts)."""
    return ExpertSet([merge_experts(experts, a, config) for a in anchors])
