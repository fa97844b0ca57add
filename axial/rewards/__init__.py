"""Judges and reward models behind one interface (`Judge`), built from spec strings by `load_judge`."""

from axial.rewards.base import Judge, load_judge

__all__ = ["Judge", "load_judge"]
