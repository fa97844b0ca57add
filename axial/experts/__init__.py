"""Axis experts: prompt-injected LoRA fine-tuning per axis (AlignX stage 1) and the axis-collapse report.

At inference an expert is used WITHOUT its axis injection: the injection only shapes training, so the expert's
behaviour has to live in its adapter (and the mixture layer can combine experts on plain prompts).
"""

from axial._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "CollapseConfig": "collapse", "collapse_report": "collapse", "ExpertConfig": "config",
    "ExpertsRecipe": "recipe", "load_recipe": "recipe", "train_experts": "recipe",
    "export_expert": "shipped", "shipped_experts_dir": "shipped", "train_expert": "train",
})
