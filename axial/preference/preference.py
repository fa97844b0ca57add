"""A user's preference over the configured axes: `helpful=0.7,harmless=0.3`, validated and on the simplex."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from axial.axes import Axis, axis_names
from axial.errors import AxialError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preference:
    """Weights over named axes, non-negative and summing to 1 (axes not named are 0)."""

    axes: tuple[str, ...]
    values: tuple[float, ...]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.axes, self.values, strict=True))

    def vector(self, names: Sequence[str]) -> list[float]:
        """The weights in the order of `names` (e.g. the mixture's experts); axes not named there get none."""
        d = self.as_dict()
        return [d.get(n, 0.0) for n in names]

    def __str__(self) -> str:
        return ",".join(f"{a}={v:.4g}" for a, v in zip(self.axes, self.values, strict=True) if v)


def _names(axes: Sequence[Axis] | Sequence[str] | None) -> list[str]:
    if axes is None:
        return axis_names()
    return [a.name if isinstance(a, Axis) else str(a) for a in axes]


def parse_preference(spec: str | Mapping[str, float] | Preference, axes: Sequence[Axis] | Sequence[str] | None = None,
                     *, normalise: bool = True) -> Preference:
    """Parse and validate a preference; normalise it to the simplex (logged when that changes the numbers).

    `axes` are the configured axes (names or Axis objects; default: the built-in ones).
    """
    names = _names(axes)
    if isinstance(spec, Preference):
        spec = spec.as_dict()
    where = f"preference {spec!r}"
    if isinstance(spec, str):
        items: list[tuple[str, object]] = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            if "=" not in part:
                raise AxialError(f"{where}: '{part}' is not axis=weight (e.g. helpful=0.7,harmless=0.3)")
            key, value = (s.strip() for s in part.split("=", 1))
            items.append((key, value))
    elif isinstance(spec, Mapping):
        items = list(spec.items())
    else:
        raise AxialError(f"{where}: expected 'axis=weight,...' or a mapping of axis names to weights")
    if not items:
        raise AxialError(f"{where}: empty; give at least one axis=weight (axes: {names})")
    raw: dict[str, float] = {}
    for key, value in items:
        if key not in names:
            raise AxialError(f"{where}: field '{key}': unknown axis; known axes: {names}")
        if key in raw:
            raise AxialError(f"{where}: field '{key}': given twice")
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise AxialError(f"{where}: field '{key}': {value!r} is not a number") from None
        if not math.isfinite(x):
            raise AxialError(f"{where}: field '{key}': must be finite, got {value!r}")
        if x < 0:
            raise AxialError(f"{where}: field '{key}': must be non-negative, got {value!r}")
        raw[key] = x
    total = sum(raw.values())
    if not math.isfinite(total):
        raise AxialError(f"{where}: the weights sum to {total} (too large for floating point); scale them down, "
                         "only their ratios matter")
    if total <= 0:
        raise AxialError(f"{where}: all weights are zero; at least one axis needs a positive weight")
    values = [raw.get(n, 0.0) for n in names]
    if normalise:
        if not math.isclose(total, 1.0, rel_tol=0, abs_tol=1e-9):
            log.warning("preference %s sums to %g; normalised to the simplex", spec, total)
        values = [v / total for v in values]
    return Preference(tuple(names), tuple(values))


def simplex_grid(names: Sequence[str], points_per_edge: int) -> list[Preference]:
    """All preferences with weights in {0, 1/n, ..., 1} over `names` (n = points_per_edge - 1)."""
    n = points_per_edge - 1
    if n < 1:
        raise AxialError(f"simplex_grid: points_per_edge must be >= 2, got {points_per_edge}")

    def compositions(total: int, parts: int):
        if parts == 1:
            yield (total,)
            return
        for first in range(total, -1, -1):
            for rest in compositions(total - first, parts - 1):
                yield (first, *rest)

    return [Preference(tuple(names), tuple(c / n for c in comp)) for comp in compositions(n, len(names))]
