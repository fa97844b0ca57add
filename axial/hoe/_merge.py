"""HoE's multi-objective experts live in axial.preference.merge; re-exported here so `axial.hoe` holds all three
levels."""

from axial.preference.merge import MergeConfig, merge_experts

__all__ = ["MergeConfig", "merge_experts"]
