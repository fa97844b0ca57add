"""HoE's multi-objective LoRA experts: merge the axis experts' task vectors at an anchor preference with
TIES / DARE (pruning and sign election from PEFT's merge_utils) and compress the result back to a rank-r LoRA
by truncated SVD.

A linear mix of task vectors is already exact in the mixture layer; the non-linear merges are what fill the
mid-front points a linear combination misses, so they become extra experts the preference router can pick.

Strength. PEFT's `ties` / `dare_ties` end with a disjoint MEAN of the λ-weighted task vectors, so with λ on the
simplex a merge of n experts comes out at about 1/n of each expert's strength (λ = (½, ½) gives half of a
standard TIES merge). A multi-objective expert at an anchor should carry full strength, so the default
(`strength="full"`) divides each entry by the total λ of the experts that contribute to it instead of by their
count: every entry is a convex combination of the contributing experts' values (TIES at λ = (½, ½) is the
standard TIES merge; at λ = (0.8, 0.2) an entry both experts agree on is 0.8 a + 0.2 b, one only `a` keeps is
a). `strength="peft"` keeps PEFT's disjoint mean. A preference with one non-zero weight is that expert, copied
exactly (no pruning, no SVD).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from axial.config import Config
from axial.errors import AxialError
from axial.mixture.experts import Expert, ExpertSet, LoraFactors, truncated_lora
from axial.preference.preference import Preference

METHODS = ("linear", "ties", "dare_linear", "dare_ties")
STRENGTHS = ("full", "peft")


@dataclass
class MergeConfig(Config):
    method: str = "ties"
    density: float = 0.5  # fraction of each task vector kept by TIES / DARE pruning
    # 0 = the sum of the merged experts' ranks (exact for `linear`; TIES/DARE merges are generally full rank, so
    # any rank truncates them: the relative SVD error is recorded in the expert's meta).
    rank: int = 0
    majority_sign_method: str = "total"
    seed: int = 0  # DARE's random pruning
    strength: str = "full"  # full | peft (see the module docstring)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise AxialError(f"MergeConfig.method: {self.method!r}; use one of {list(METHODS)}")
        if not 0 < self.density <= 1:
            raise AxialError(f"MergeConfig.density: must be in (0, 1], got {self.density}")
        if self.rank < 0:
            raise AxialError(f"MergeConfig.rank: must be >= 0, got {self.rank}")
        if self.strength not in STRENGTHS:
            raise AxialError(f"MergeConfig.strength: {self.strength!r}; use one of {list(STRENGTHS)}")
        if self.majority_sign_method not in ("total", "frequency"):
            raise AxialError(f"MergeConfig.majority_sign_method: use total or frequency, got "
                             f"{self.majority_sign_method!r}")


def _merge(tensors: list[torch.Tensor], weights: torch.Tensor, cfg: MergeConfig) -> torch.Tensor:
    from peft.utils import merge_utils

    if cfg.method == "linear":
        return merge_utils.task_arithmetic(tensors, weights)
    if cfg.method == "dare_linear":
        return merge_utils.dare_linear(tensors, weights, cfg.density)
    if cfg.strength == "peft":
        if cfg.method == "ties":
            return merge_utils.ties(tensors, weights, cfg.density, cfg.majority_sign_method)
        return merge_utils.dare_ties(tensors, weights, cfg.density, cfg.majority_sign_method)
    # Full strength: PEFT's pruning and sign election, then a λ-weighted mean over the experts that contribute to
    # each entry (PEFT divides by their count, which scales a normalised λ down; peft has no option for this).
    if cfg.density >= 1:
        pruned = tensors
    elif cfg.method == "ties":
        pruned = [merge_utils.prune(t, cfg.density, method="magnitude") for t in tensors]
    else:
        pruned = [merge_utils.prune(t, cfg.density, method="random", rescale=True) for t in tensors]
    stacked = torch.stack(pruned)
    w = merge_utils.reshape_weight_task_tensors(stacked, weights)
    weighted = stacked * w
    agree = merge_utils.calculate_majority_sign_mask(weighted, cfg.majority_sign_method)  # False on zeros
    total = (w * agree).sum(0)
    return torch.where(total > 0, (weighted * agree).sum(0) / total.clamp_min(1e-30), torch.zeros_like(total))


def merge_experts(experts: ExpertSet, preference: Preference, config: MergeConfig | None = None,
                  *, name: str | None = None) -> Expert:
    """One expert = SVD_r(Merge({s_k B_k A_k}, λ)) per module, for the experts named by the preference's axes.

    Full strength by default (see the module docstring); a one-hot preference returns that expert's factors
    unchanged (with the anchor's meta).
    """
    cfg = config or MergeConfig()
    lam = dict(zip(preference.axes, preference.values, strict=True))
    chosen = [e for e in experts if lam.get(e.name, 0.0) > 0]
    missing = [a for a, v in lam.items() if v > 0 and a not in experts.names]
    if missing:
        raise AxialError(f"merge_experts: preference field(s) {missing} have no expert; experts: {experts.names}")
    tag = "_".join(f"{a}{v:.2f}" for a, v in lam.items() if v > 0)
    if len(chosen) == 1:
        (only,) = chosen
        factors = {m: LoraFactors(f.A.clone(), f.B.clone(), f.scaling) for m, f in only.factors.items()}
        meta = {"preference": preference.as_dict(), "merge": cfg.to_dict(), "svd_rank": None,
                "mean_relative_error": 0.0, "sources": [only.source or only.name], "copied_from": only.name}
        return Expert(name=name or f"{cfg.method}_{tag}", factors=factors, meta=meta)
    rank = cfg.rank or sum(max(f.rank for f in e.factors.values()) for e in chosen)
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
    meta = {"preference": preference.as_dict(), "merge": cfg.to_dict(), "svd_rank": rank,
            "mean_relative_error": sum(errors) / len(errors), "sources": [e.source or e.name for e in chosen]}
    base = next((e.base for e in chosen if e.base), None)
    if base is not None:  # load_experts already refused experts recorded on different bases
        meta["base"] = base
    return Expert(name=name or f"{cfg.method}_{tag}", factors=factors, meta=meta)


def anchor_experts(experts: ExpertSet, anchors: Sequence[Preference], config: MergeConfig | None = None) -> ExpertSet:
    """Merged experts at each anchor preference (HoE's multi-objective LoRA experts)."""
    return ExpertSet([merge_experts(experts, a, config) for a in anchors])
