"""Evaluation harness: TruthfulQA (MC and generation), harmless safety rate, Alpaca win rate; bootstrap CIs."""

from axial.evaluate.config import EvalConfig
from axial.evaluate.harness import evaluate

__all__ = ["EvalConfig", "evaluate"]
