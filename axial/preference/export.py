"""Fold a fixed preference into something any serving stack loads.

  hf   : W' = W + Σ_k w_k s_k B_k A_k in every adapted linear, saved as a plain HF model folder (zero overhead)
  peft : one LoRA adapter of rank Σ r_k, A = [A_1; ...; A_K], B = [w_1 s_1 B_1, ..., w_K s_K B_K]; exact,
         because B A = Σ_k w_k s_k B_k A_k, and loadable by plain PEFT and vLLM
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from axial.config import Config
from axial.errors import AxialError
from axial.mixture import Expert, LoraFactors, save_expert
from axial.preference.preference import Preference, parse_preference
from axial.preference.routing import static_weights

FORMATS = ("hf", "peft")


@dataclass
class ExportConfig(Config):
    """Saved as axial_export.json beside every export: what was folded, from what."""

    model: str = ""
    experts: list[str] = field(default_factory=list)
    preference: str = ""
    format: str = "hf"
    expert_names: list[str] = field(default_factory=list)
    expert_weights: list[float] = field(default_factory=list)

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise AxialError(f"ExportConfig.format: {self.format!r}; use one of {list(FORMATS)}")


def _combined_expert(mixture, weights: list[float], name: str) -> Expert:
    factors = {}
    for module in mixture.modules:  # only what is attached (target_modules may have narrowed it)
        parts = [(w, e.factors[module]) for w, e in zip(weights, mixture.experts, strict=True)
                 if w != 0 and module in e.factors]
        if not parts:
            continue
        A = torch.cat([f.A.float() for _, f in parts], dim=0)
        B = torch.cat([w * f.scaling * f.B.float() for w, f in parts], dim=1)
        factors[module] = LoraFactors(A, B, 1.0)
    if not factors:
        raise AxialError("export: every expert weight is zero; the result would be the base model")
    return Expert(name=name, factors=factors)


def export(variant, preference: str | dict | Preference, out: str | Path, format: str = "hf",
           axes=None) -> Path:
    """Write the variant's mixture at a fixed preference to `out` (an HF model folder or a PEFT adapter)."""
    cfg = ExportConfig(format=format)
    mixture = getattr(variant, "mixture", None)
    if mixture is None:
        raise AxialError("export: the variant has no experts attached (give --experts)")
    pref = parse_preference(preference, axes)
    weights = static_weights(mixture, pref)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise AxialError(f"export: output folder {out} exists and is not empty")
    model, tok = variant.model, variant.tokenizer
    spec = getattr(variant, "spec", None)
    cfg = cfg.replace(model=str(getattr(model, "axial_spec", "") or getattr(spec, "model", "")),
                      experts=[e.source for e in mixture.experts], preference=str(pref),
                      expert_names=mixture.expert_names, expert_weights=weights)
    if format == "peft":
        base_name = getattr(model, "name_or_path", None) or cfg.model or None
        save_expert(_combined_expert(mixture, weights, name=f"export_{pref}"), out, base_model_name=base_name)
    else:
        deltas = mixture.delta_weights(weights)
        with mixture.detached():
            state = model.state_dict()
            ptrs = [p.data_ptr() for _, p in model.named_parameters(remove_duplicate=False)]
            tied = {n for n in deltas if ptrs.count(model.get_submodule(n).weight.data_ptr()) > 1}
            if tied:
                raise AxialError(f"export: module(s) {sorted(tied)} share weights with another layer; folding "
                                 "an update into them would change both; use --format peft")
            for name, delta in deltas.items():
                key = f"{name}.weight"
                state[key] = (state[key].float() + delta.to(state[key].device)).to(state[key].dtype)
            model.save_pretrained(out, state_dict=state)
        if tok is not None:
            tok.save_pretrained(out)
    cfg.save(out / "axial_export.json")
    return out
