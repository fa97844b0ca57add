"""The mixture layer: K LoRA experts stacked in every target linear, weights from a pluggable source."""

from axial.mixture.experts import (
    Expert,
    ExpertSet,
    LoraFactors,
    experts_from_finetuned,
    load_experts,
    load_lora_expert,
    save_expert,
)
from axial.mixture.layer import MixtureLinear
from axial.mixture.mixture import Mixture
from axial.mixture.routing import GateConfig, LinearRouter

__all__ = ["Expert", "ExpertSet", "GateConfig", "LinearRouter", "LoraFactors", "Mixture", "MixtureLinear",
           "experts_from_finetuned", "load_experts", "load_lora_expert", "save_expert"]
