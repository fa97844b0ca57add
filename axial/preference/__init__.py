"""HoE preference control: validated preferences, merged anchor experts, preference routing, export."""

from axial.preference.export import ExportConfig, export
from axial.preference.merge import MergeConfig, anchor_experts, merge_experts
from axial.preference.pareto import ParetoConfig, hypervolume, pareto
from axial.preference.preference import Preference, parse_preference, simplex_grid
from axial.preference.routing import (
    Anchor,
    PreferenceRouter,
    convex_weights,
    default_anchors,
    load_anchors,
    preference_plan,
    route_preference,
    static_weights,
)

__all__ = ["Anchor", "ExportConfig", "MergeConfig", "ParetoConfig", "Preference", "PreferenceRouter", "anchor_experts",
           "convex_weights", "default_anchors", "export", "hypervolume", "load_anchors", "merge_experts", "pareto", "parse_preference", "preference_plan",
           "route_preference", "simplex_grid", "static_weights"]
