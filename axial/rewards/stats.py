"""Accuracy with a 95% CI for judge validation, clustered by prompt where several pairs share one.

Builds on axial.stats.bootstrap_ci (percentile bootstrap). Pairs that share a prompt (TruthfulQA gives
several correct x incorrect pairs per question) are not independent, so we resample whole groups and take the
pooled mean (sum of wins / number of pairs) of each resample; a per-pair bootstrap would give too narrow a CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from axial.stats import bootstrap_ci


def _pooled_mean(rows: np.ndarray) -> float:
    return float(rows[:, 0].sum() / rows[:, 1].sum())


def mean_ci(values: Sequence[float], *, groups: Sequence[str] | None = None, seed: int = 0) -> dict[str, Any]:
    """{"value", "ci95": [lo, hi], "n", "n_groups"}: mean of `values`, bootstrap CI over groups (or items)."""
    if groups is None:
        out = bootstrap_ci(list(values), seed=seed)
        out["n_groups"] = out["n"]
        return out
    if len(groups) != len(values):
        raise ValueError(f"mean_ci: {len(values)} values but {len(groups)} groups")
    sums: dict[str, list[float]] = {}
    for v, g in zip(values, groups, strict=True):
        acc = sums.setdefault(g, [0.0, 0.0])
        acc[0] += v
        acc[1] += 1
    out = bootstrap_ci(np.array(list(sums.values())), _pooled_mean, seed=seed) if sums else \
        {"value": None, "ci95": [None, None]}
    out["n"] = len(values)
    out["n_groups"] = len(sums)
    return out
