"""Preferences over the axes: validated λ, merged anchor experts (HoE's multi-objective experts), and the
anchor math that maps a λ to expert weights (used by the `pref:` weight source, axial.sources)."""

from axial.preference.merge import MergeConfig, anchor_experts, merge_experts
from axial.preference.preference import Preference, parse_preference, simplex_grid
from axial.preference.routing import (
    Anchor,
    PreferenceRouter,
    anchor_mixture,
    convex_weights,
    default_anchors,
    load_anchors,
    preference_plan,
)

__all__ = ["Anchor", "MergeConfig", "Preference", "PreferenceRouter", "anchor_experts", "anchor_mixture",
           "convex_weights", "default_anchors", "load_anchors", "merge_experts", "parse_preference",
           "preference_plan", "simplex_grid"]
