"""Judges and reward models behind one interface (`Judge`), built from spec strings by `load_judge`."""

from axial.rewards.base import Judge
from axial.rewards.registry import SPEC_HELP, load_judge, register_judge_kind

__all__ = ["SPEC_HELP", "Judge", "load_judge", "register_judge_kind"]
