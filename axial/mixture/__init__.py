"""The mixture layer: K LoRA experts stacked in every target linear, weights from a pluggable source."""

from axial._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    **{name: "experts" for name in ("Expert", "ExpertSet", "LoraFactors", "experts_from_finetuned",
                                    "load_experts", "load_lora_expert", "save_expert")},
    "MixtureLinear": "layer", "Mixture": "mixture",
    **{name: "routing" for name in ("GateConfig", "LinearRouter", "Router", "RowsRouter")},
    **{name: "resolved" for name in ("Routed", "Static", "WeightSource")},
})
