"""Axis experts: prompt-injected LoRA fine-tuning per axis (AlignX stage 1) and the axis-collapse report.

At inference an expert is used WITHOUT its axis injection: the injection only shapes training, so the expert's
behaviour has to live in its adapter (and the mixture layer can combine experts on plain prompts).
"""

from axial.experts.collapse import CollapseConfig, collapse_report
from axial.experts.config import ExpertConfig
from axial.experts.recipe import ExpertsRecipe, load_recipe, train_experts
from axial.experts.shipped import export_expert, shipped_experts_dir
from axial.experts.train import train_expert

__all__ = ["CollapseConfig", "ExpertConfig", "ExpertsRecipe", "collapse_report", "export_expert", "load_recipe",
           "shipped_experts_dir", "train_expert", "train_experts"]
