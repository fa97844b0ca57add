"""Calibration of routing probabilities: metrics (ECE, Brier, NLL, accuracy), calibrators, reliability diagrams.

A routing decision is one row of K logits (K experts) with the axis label as the target. Rows come from
(example, layer) pairs for per-sequence routing and (example, layer, token) for per-token routing; `groups`
holds the example of each row so confidence intervals resample whole examples (rows of one example are not
independent).

Calibration: temperature scaling, p = softmax(z / T) with one T fitted by NLL (LBFGS on log T, so T stays
positive; Guo et al. 2017) on a held-out split, never on the router's training data. `none` is the
uncalibrated ablation.

AlignX's "fractal and natural geometry" calibration has no published definition. Two interpretations were
implemented, tested and compared with temperature scaling on the real router's held-out data (commit fd98829,
results in benchmarks/results/mocae/README.md): "natural" = shrinkage along Fisher–Rao geodesics of the simplex
(p -> sqrt(p) on the sphere, angle to a uniform or learned center scaled by s), and "fractal" = per-layer
temperatures tied by a depth power law T_l = T0 * ((l + 1) / L)^alpha. Neither measurably beat plain
temperature scaling on held-out ECE and NLL (overlapping 95% CIs; natural had worse NLL, fractal fitted
alpha ~ 0 and equalled it), so, as the issue asked, they were removed rather than shipped.

Metrics: ECE is the top-label expected calibration error over 15 equal-width confidence bins (Naeini et al.
2015; bins are (lo, hi], the first also holds 0); Brier is the mean over rows of sum_k (p_k - y_k)^2; NLL is the
mean -log p_label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from axial.errors import AxialError
from axial.io import atomic_output

N_BINS = 15
METHODS = ("temperature", "none")
_EPS = 1e-12


# ---------------------------------------------------------------- metrics


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or labels.shape != (probs.shape[0],):
        raise AxialError(f"calibration metrics: expected probs [N, K] and labels [N], got {probs.shape} and "
                         f"{labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise AxialError(f"calibration metrics: labels must be in [0, {probs.shape[1]}), got {labels.min()}.."
                         f"{labels.max()}")
    return probs, labels


def expected_calibration_error(probs, labels, n_bins: int = N_BINS) -> float:
    probs, labels = _check(probs, labels)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    # Bin b holds confidences in (b/n, (b+1)/n]; ceil puts an exact edge in the lower bin, as in Naeini et al.
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.sum() * abs(correct[mask].mean() - conf[mask].mean())
    return float(total / len(labels))


def brier_score(probs, labels) -> float:
    probs, labels = _check(probs, labels)
    onehot = np.eye(probs.shape[1])[labels]
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def negative_log_likelihood(probs, labels) -> float:
    probs, labels = _check(probs, labels)
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], _EPS, None)).mean())


def accuracy(probs, labels) -> float:
    probs, labels = _check(probs, labels)
    return float((probs.argmax(axis=1) == labels).mean())


METRICS = {"accuracy": accuracy, "ece": expected_calibration_error, "brier": brier_score,
           "nll": negative_log_likelihood}


def calibration_metrics(probs, labels, groups: Sequence | None = None, *, resamples: int = 1000,
                        seed: int = 0) -> dict[str, Any]:
    """Every metric as {"value", "ci95", "n"}; the CI is a percentile bootstrap over groups (examples).

    n is the number of groups (independent examples), and "rows" the number of routing decisions.
    """
    probs, labels = _check(probs, labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    uniq, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(uniq))]
    rng = np.random.default_rng(seed)
    draws = [np.concatenate([members[g] for g in rng.integers(0, len(uniq), len(uniq))])
             for _ in range(resamples)] if len(uniq) else []
    out: dict[str, Any] = {}
    for name, fn in METRICS.items():
        value = fn(probs, labels) if len(labels) else float("nan")
        samples = [fn(probs[d], labels[d]) for d in draws]
        lo, hi = np.percentile(samples, [2.5, 97.5]) if samples else (float("nan"), float("nan"))
        out[name] = {"value": value, "ci95": [float(lo), float(hi)], "n": int(len(uniq))}
    out["rows"] = int(len(labels))
    return out


# ---------------------------------------------------------------- calibrators


class Calibrator:
    """Maps logits [N, K] to calibrated probabilities [N, K]."""

    method = ""

    def parameters(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def fit(self, logits, labels, *, max_iter: int = 200) -> Calibrator:
        logits = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        if logits.ndim != 2 or len(labels) != len(logits) or len(labels) == 0:
            raise AxialError(f"calibration fit: need logits [N>0, K] and labels [N], got {tuple(logits.shape)} "
                             f"and {tuple(labels.shape)}")
        params = self.parameters()
        opt = torch.optim.LBFGS(params, lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            p = self.probs(logits)
            loss = -torch.log(p[torch.arange(len(labels)), labels].clamp_min(_EPS)).mean()
            loss.backward()
            return loss

        opt.step(closure)
        return self

    def apply(self, logits) -> np.ndarray:
        with torch.no_grad():
            return self.probs(torch.as_tensor(np.asarray(logits), dtype=torch.float64)).numpy()

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, **self.state()}


class TemperatureScaling(Calibrator):
    method = "temperature"

    def __init__(self, temperature: float = 1.0):
        self.log_t = torch.tensor(math.log(temperature), dtype=torch.float64, requires_grad=True)

    @property
    def temperature(self) -> float:
        return float(self.log_t.detach().exp())

    def parameters(self):
        return [self.log_t]

    def probs(self, logits):
        return torch.softmax(logits / self.log_t.exp(), dim=-1)

    def state(self):
        return {"temperature": self.temperature}


class Identity(Calibrator):
    """No calibration (the `calibration=none` ablation): softmax(z)."""

    method = "none"

    def parameters(self):
        return []

    def fit(self, logits, labels, *, max_iter: int = 200) -> Calibrator:
        return self

    def probs(self, logits):
        return torch.softmax(logits, dim=-1)

    def state(self):
        return {}


def make_calibrator(method: str) -> Calibrator:
    if method == "temperature":
        return TemperatureScaling()
    if method == "none":
        return Identity()
    raise AxialError(f"calibration method '{method}': expected one of {list(METHODS)}")


def calibrator_from_dict(data: dict[str, Any]) -> Calibrator:
    method = data.get("method")
    if method == "temperature":
        return TemperatureScaling(float(data["temperature"]))
    if method == "none":
        return Identity()
    raise AxialError(f"calibration: unknown method {method!r}; expected one of {list(METHODS)}")


# ---------------------------------------------------------------- plots


def _reliability_points(probs: np.ndarray, labels: np.ndarray, n_bins: int):
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    centers, accs, counts = [], [], []
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            centers.append(conf[mask].mean())
            accs.append(correct[mask].mean())
            counts.append(int(mask.sum()))
    return np.array(centers), np.array(accs), np.array(counts)


def reliability_diagram(panels: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, *,
                        title: str = "", n_bins: int = N_BINS) -> Path:
    """One panel per entry {label: (probs, labels)}: accuracy vs confidence per bin, with ECE in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    edges = np.linspace(0, 1, n_bins + 1)
    for ax, (label, (probs, labels)) in zip(axes[0], panels.items(), strict=True):
        probs, labels = _check(probs, labels)
        conf, acc, counts = _reliability_points(probs, labels, n_bins)
        ece = expected_calibration_error(probs, labels, n_bins)
        ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
        ax.bar(edges[:-1], np.histogram(probs.max(1), bins=edges)[0] / max(len(labels), 1), width=1 / n_bins,
               align="edge", color="lightgrey", alpha=0.6, label="share of rows")
        ax.plot(conf, acc, "o-", color="C0", label=f"accuracy (ECE {ece:.3f})")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (max routing probability)",
               ylabel="accuracy", title=f"{label} (rows={len(labels)})")
        ax.legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path
