"""Preference routing: a user's λ -> convex weights over the nearest anchors (w1) -> expert weights (w2).

An anchor is a preference λ^(a) bound to a way of weighting the mixture's experts, η_a:
  * fixed weights [K] (no router): a single axis expert is one-hot at its axis; a merged expert is one-hot
    at its anchor preference; without anything else an anchor's weights are its λ;
  * a router with its GateConfig (any axial.mixture.Router, e.g. one loaded with axial.mocae.load_router): HoE's
    router experts (axial.hoe.train_hoe), trained at the anchor's preference over its nearest experts.
For a user λ: take the N anchors nearest λ (default: the fewest that represent λ), solve
min ||Σ w1_i λ^(i) − λ|| over the simplex (NNLS with the sum-to-one row appended), and use
w2 = Σ w1_i η_i(x) (`anchor_mixture`, the one place it is computed). With fixed-weight anchors only, w2 is a
static vector (exact, foldable into W); with routers it is per token, still one forward pass.

With only the axis experts as anchors (the default), w2 = λ: that is linear interpolation of the experts'
task vectors (plain weight mixing), not HoE; HoE's preference routing needs router experts (the `hoe:` source,
axial.hoe) or merged anchors.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from axial.errors import AxialError, DataError
from axial.mixture.resolved import Routed, Static
from axial.mixture.routing import GateConfig, Router
from axial.preference.preference import Preference, parse_preference


@dataclass
class Anchor:
    preference: Preference
    weights: list[float] | None = None  # η over the mixture's experts when there is no router
    router: nn.Module | None = None
    gate: GateConfig | None = None
    name: str = ""


def default_anchors(mixture, axes: Sequence[str]) -> list[Anchor]:
    """One anchor per expert: an axis expert at its one-hot axis, a merged expert at its stored preference."""
    k = mixture.num_experts
    anchors = []
    for i, expert in enumerate(mixture.experts):
        if expert.name in axes:
            pref = Preference(tuple(axes), tuple(1.0 if a == expert.name else 0.0 for a in axes))
        elif isinstance(expert.meta.get("preference"), dict):
            pref = parse_preference(expert.meta["preference"], axes)
        else:
            continue
        anchors.append(Anchor(pref, [1.0 if j == i else 0.0 for j in range(k)], name=expert.name))
    if not anchors:
        raise AxialError(f"no expert is bound to a preference: expert names {mixture.expert_names} are not axes "
                         f"{list(axes)} and none carries a 'preference' in its axial_expert.json")
    return anchors


def load_anchors(path: str | Path, mixture, axes: Sequence[str] | None = None) -> list[Anchor]:
    """Anchors from JSON: {"anchors": [{"preference": "helpful=0.5,harmless=0.5", "router": DIR | null,
    "weights": [K floats] | null, "name": str}]}. A router DIR (relative paths: relative to the anchors file's
    folder) is loaded with axial.mocae.load_router; HoE's router experts (axial.hoe) are such routers."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise AxialError(f"anchors file {path}: not found") from None
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", path=str(path), line=e.lineno) from e
    items = data.get("anchors") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise DataError("expected {\"anchors\": [...]} with at least one anchor", path=str(path), field="anchors")
    anchors = []
    for i, item in enumerate(items):
        where = f"anchors[{i}]"
        if not isinstance(item, dict) or "preference" not in item:
            raise DataError("expected an object with a 'preference'", path=str(path), field=where)
        unknown = sorted(set(item) - {"preference", "router", "weights", "name"})
        if unknown:
            raise DataError(f"unknown key(s) {unknown}", path=str(path), field=where)
        try:
            pref = parse_preference(item["preference"], axes)
        except AxialError as e:
            raise DataError(str(e), path=str(path), field=f"{where}.preference") from None
        router = gate = None
        if item.get("router"):
            try:
                from axial.mocae import load_router
            except ImportError as e:
                raise AxialError(f"{path}: {where}.router needs axial.mocae.load_router ({e})") from e
            folder = Path(item["router"])
            router, gate = load_router(folder if folder.is_absolute() else path.parent / folder, mixture)
        anchors.append(Anchor(pref, item.get("weights"), router, gate, name=str(item.get("name", ""))))
    return anchors


def convex_weights(target: Sequence[float], points: np.ndarray, n_nearest: int | None = None,
                   tol: float = 1e-6) -> tuple[np.ndarray, float]:
    """w1 >= 0, Σ w1 = 1 minimising ||points^T w1 − target|| over the n nearest points (others 0).

    If the nearest n cannot represent the target (residual > tol), more anchors are added, nearest first, so
    a target inside the anchors' hull is always matched exactly. The default (n_nearest=None) starts from one:
    the fewest nearest anchors that represent λ, which keeps the combination local (HoE) and unique where
    more anchors than axes would allow many. Returns (w1 over all points, residual).
    """
    from scipy.optimize import nnls

    t = np.asarray(target, dtype=float)
    order = np.argsort(np.linalg.norm(points - t, axis=1), kind="stable")
    n0 = min(n_nearest or 1, len(points))
    rho = 1e3  # weight of the sum-to-one row: large enough that Σ w1 = 1 holds to ~1e-9
    for n in range(n0, len(points) + 1):
        sel = order[:n]
        M = np.vstack([points[sel].T, rho * np.ones(n)])
        try:
            x, _ = nnls(M, np.append(t, rho))
        except RuntimeError:
            # scipy 1.12-1.13's nnls can stop at its iteration limit on this (well-posed) problem; the
            # bounded least-squares solver gives the same active-set solution.
            from scipy.optimize import lsq_linear

            x = lsq_linear(M, np.append(t, rho), bounds=(0.0, np.inf), method="bvls", tol=1e-12).x
        x = x / x.sum()
        residual = float(np.linalg.norm(points[sel].T @ x - t))
        if residual <= tol or n == len(points):
            break
    w1 = np.zeros(len(points))
    w1[sel] = x
    return w1, residual


class PreferenceRouter(Router):
    """w2(x) = Σ_i w1_i η_i(x) for per-row w1 [B, N] (or one row for the whole batch): the anchors' static weights
    and gated routers, mixed in one pass."""

    outputs_weights = True

    def __init__(self, anchors: Sequence[Anchor], w1: torch.Tensor, num_experts: int):
        super().__init__()
        self.routers = nn.ModuleList(a.router for a in anchors if a.router is not None)
        self.gates = [a.gate or GateConfig() for a in anchors if a.router is not None]
        routed = [i for i, a in enumerate(anchors) if a.router is not None]
        fixed = [i for i, a in enumerate(anchors) if a.router is None]
        w1 = w1 if w1.dim() == 2 else w1[None]
        eta = torch.tensor([anchors[i].weights for i in fixed]).reshape(len(fixed), -1)
        self.register_buffer("static", w1[:, fixed] @ eta if fixed else torch.zeros(w1.shape[0], num_experts))
        self.register_buffer("w1_routed", w1[:, routed])

    def bind(self, model: nn.Module) -> None:
        for r in self.routers:
            r.bind(model)

    def unbind(self) -> None:
        for r in self.routers:
            r.unbind()

    @contextlib.contextmanager
    def pool_over(self, mask):
        with contextlib.ExitStack() as stack:
            for r in self.routers:
                stack.enter_context(r.pool_over(mask))
            yield self

    def forward(self, hidden: torch.Tensor, layer_idx: int) -> torch.Tensor:
        b = hidden.shape[0]
        if self.static.shape[0] not in (1, b):
            raise AxialError(f"preference routing has {self.static.shape[0]} rows of preferences but the batch "
                             f"has {b}")
        w2 = self.static[:, None, :].to(hidden.device).expand(b, hidden.shape[1], -1)
        for j, (router, gate) in enumerate(zip(self.routers, self.gates, strict=True)):
            eta = router(hidden, layer_idx)
            eta = eta if router.outputs_weights else gate(eta)
            w2 = w2 + self.w1_routed[:, j, None, None].to(eta.device) * eta
        return w2


def preference_plan(mixture, preferences: Sequence[Preference], anchors: Sequence[Anchor] | None = None,
                    n_nearest: int | None = None) -> tuple[list[Anchor], torch.Tensor]:
    """(anchors, w1 [P, N]) for each preference; a preference the anchors cannot reach is an error."""
    axes = list(preferences[0].axes)
    if anchors is None:
        anchors = default_anchors(mixture, axes)
    # Without a router and explicit weights, an anchor weights the axis experts by its own λ.
    anchors = [a if a.router is not None or a.weights is not None
               else replace(a, weights=a.preference.vector(mixture.expert_names)) for a in anchors]
    if not anchors:
        raise AxialError("preference routing: no anchors given")
    for i, a in enumerate(anchors):
        if a.weights is None:
            continue
        if len(a.weights) != mixture.num_experts:
            raise AxialError(f"anchor '{a.name or a.preference}': {len(a.weights)} expert weights for "
                             f"{mixture.num_experts} experts {mixture.expert_names}")
        try:
            anchors[i] = replace(a, weights=[float(x) for x in a.weights])
        except (TypeError, ValueError):
            raise AxialError(f"anchor '{a.name or a.preference}': weights {a.weights} are not all numbers") from None
    points = np.array([a.preference.vector(axes) for a in anchors])
    rows = []
    for p in preferences:
        w1, residual = convex_weights(p.vector(axes), points, n_nearest)
        if residual > 1e-6:
            covered = [a.name or str(a.preference) for a in anchors]
            raise AxialError(f"preference {p} is outside what the anchors span ({covered}; nearest reachable "
                             f"point at distance {residual:.3g}): add an expert or anchor for its axes")
        rows.append(w1)
    return anchors, torch.tensor(np.array(rows), dtype=torch.float32)


def anchor_mixture(mixture, preferences: Preference | Sequence[Preference],
                   anchors: Sequence[Anchor] | None = None, n_nearest: int | None = None) -> Static | Routed:
    """What the mixture runs for one preference (global) or one per batch row: w2 = Σ w1_i η_i as static weights
    when every anchor it uses is static, else a PreferenceRouter (which is where w1 @ η is computed, once)."""
    per_row = not isinstance(preferences, Preference)
    prefs = list(preferences) if per_row else [preferences]
    anchors, w1 = preference_plan(mixture, prefs, anchors, n_nearest)
    router = PreferenceRouter(anchors, w1, mixture.num_experts)
    used = w1.abs().sum(0) > 0
    if any(a.router is not None and used[i] for i, a in enumerate(anchors)):
        return Routed(router)  # one preference ([1, N]) broadcasts over any batch size
    # Every anchor this preference uses is static: w2 is the router's static part, exact and foldable.
    return Static(router.static if per_row else router.static[0])
