"""Bootstrap confidence intervals (plain and paired) and the deterministic `--limit` subset.

Hand-written because scipy.stats.bootstrap has no paired mode across two statistics sharing resample indices
and would add a dependency for ~40 lines of numpy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Statistic = Callable[[np.ndarray], float]
DEFAULT_RESAMPLES = 2000


def mean_statistic(rows: np.ndarray) -> float:
    return float(np.mean(rows[:, 0])) if rows.ndim == 2 else float(np.mean(rows))


def _as_rows(values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr[:, None] if arr.ndim == 1 else arr


def _resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _percentile_ci(samples: np.ndarray) -> list[float]:
    lo, hi = np.nanpercentile(samples, [2.5, 97.5])
    return [float(lo), float(hi)]


def bootstrap_ci(values, statistic: Statistic = mean_statistic, *, resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0) -> dict[str, Any]:
    """{"value", "ci95": [lo, hi], "n"}: percentile bootstrap over items (rows of `values`)."""
    rows = _as_rows(values)
    n = len(rows)
    if n == 0:
        return {"value": None, "ci95": [None, None], "n": 0}
    value = statistic(rows)
    if resamples < 1:
        raise ValueError("resamples must be >= 1")
    idx = _resample_indices(n, resamples, seed)
    if statistic is mean_statistic:  # vectorised fast path for the common case
        samples = rows[:, 0][idx].mean(axis=1)
    else:
        samples = np.array([statistic(rows[i]) for i in idx])
    return {"value": float(value), "ci95": _percentile_ci(samples), "n": n}


def paired_bootstrap_diff(values_a, values_b, statistic: Statistic = mean_statistic, *,
                          resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """statistic(b) - statistic(a) on the SAME items (row i of a and b is item i), with a paired 95% CI.

    Resampling items jointly keeps the per-item correlation between the variants, so the interval is much
    tighter than the difference of two independent intervals when both variants find the same items hard.
    """
    a, b = _as_rows(values_a), _as_rows(values_b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"paired bootstrap needs the same items: {a.shape[0]} vs {b.shape[0]} rows")
    n = len(a)
    if n == 0:
        return {"value": None, "ci95": [None, None], "n": 0}
    value = statistic(b) - statistic(a)
    idx = _resample_indices(n, resamples, seed)
    if statistic is mean_statistic:
        d = b[:, 0] - a[:, 0]
        samples = d[idx].mean(axis=1)
    else:
        samples = np.array([statistic(b[i]) - statistic(a[i]) for i in idx])
    return {"value": float(value), "ci95": _percentile_ci(samples), "n": n}


def hash_order(ids: Sequence[str], seed: int = 0) -> list[int]:
    """Indices of `ids` sorted by a seeded hash: a fixed pseudo-random order independent of file order."""
    def key(i: int) -> str:
        return hashlib.sha256(f"{seed}:{ids[i]}".encode()).hexdigest()

    return sorted(range(len(ids)), key=key)


def deterministic_subset(ids: Sequence[str], limit: int | None, seed: int = 0) -> list[int]:
    """Indices of the `limit` items first in hash order, returned in original order.

    Hash order (not the first N) so a subset is not biased by how the file is sorted (TruthfulQA is grouped by
    category); a larger limit gives a superset, so a resumed run with a bigger --limit keeps its finished items.
    """
    if limit is None or limit >= len(ids):
        return list(range(len(ids)))
    return sorted(hash_order(ids, seed)[:limit])
