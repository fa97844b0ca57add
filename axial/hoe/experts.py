"""Where each expert sits in preference space, and which experts a router expert at an anchor may use.

HoE places every LoRA expert at a preference: a single-objective (axis) expert at its one-hot axis, a
multi-objective expert (axial.preference.merge_experts) at the preference it was merged at (its
axial_expert.json 'preference'). A router expert at anchor λ_a routes over the N experts nearest λ_a
(Euclidean distance on the simplex); experts tied with the N-th nearest are kept too, so the choice never
depends on the order the experts were listed in (at the centre of three axis experts, all three are equally
near).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from axial.errors import AxialError
from axial.preference.preference import Preference, parse_preference, simplex_grid

TIE_TOLERANCE = 1e-9


def expert_positions(experts, axes: Sequence[str]) -> dict[str, Preference]:
    """{expert name: its preference}. An expert named after an axis sits at that axis; a merged expert at its
    stored preference. Any other expert has no place in preference space, which HoE cannot use: an error."""
    out: dict[str, Preference] = {}
    for e in experts:
        if e.name in axes:
            out[e.name] = Preference(tuple(axes), tuple(1.0 if a == e.name else 0.0 for a in axes))
        elif isinstance(e.meta.get("preference"), dict):
            out[e.name] = parse_preference(e.meta["preference"], axes)
        else:
            raise AxialError(f"expert '{e.name}' ({e.source or 'in memory'}) is neither an axis expert (axes: "
                             f"{list(axes)}) nor a merged expert with a 'preference' in its axial_expert.json, so it "
                             "has no place in preference space; HoE needs every expert placed")
    return out


def nearest_experts(anchor: Preference, positions: dict[str, Preference], n: int) -> list[str]:
    """The experts nearest `anchor` (at least n; every expert tied with the n-th nearest is kept), in the
    positions' order."""
    if n < 1:
        raise AxialError(f"n_nearest must be >= 1, got {n}")
    names = list(positions)
    axes = list(anchor.axes)
    target = np.array(anchor.vector(axes))
    dist = np.array([np.linalg.norm(np.array(positions[k].vector(axes)) - target) for k in names])
    if n >= len(names):
        return names
    cutoff = np.sort(dist)[n - 1] + TIE_TOLERANCE
    return [k for k, d in zip(names, dist, strict=True) if d <= cutoff]


def default_anchor_preferences(axes: Sequence[str]) -> list[Preference]:
    """The anchors router experts are trained at by default: every point of the simplex grid with 3 points per
    edge that is not a vertex (the edge midpoints), plus the centre when there are 3 or more axes. The vertices
    are the axis experts themselves."""
    if len(axes) < 2:
        raise AxialError(f"HoE needs at least two axes, got {list(axes)}")
    grid = [p for p in simplex_grid(list(axes), 3) if sum(v > 0 for v in p.values) > 1]
    if len(axes) >= 3:
        grid.append(Preference(tuple(axes), tuple(1.0 / len(axes) for _ in axes)))
    return grid


def anchor_name(p: Preference) -> str:
    return "_".join(f"{a}{v:.2f}".replace(".", "p") for a, v in zip(p.axes, p.values, strict=True) if v > 0)
