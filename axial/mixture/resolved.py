"""What every weight source resolves to: `Static` weights or a `Routed` (router, gate) pair.

Kept free of torch so that parsing sources (axial.sources) and building CLI help stay cheap; the mixture
(axial.mixture.mixture) is what applies them.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass


class WeightSource(abc.ABC):
    """What `Mixture.use` takes: a value that resolves, for one mixture, to `Static` weights or a `Routed`
    (router, gate) pair. The named, parseable kinds (base, uniform, expert:NAME, pref:..., mocae:DIR, ...) live in
    axial.sources; `Static` and `Routed` themselves are sources that resolve to themselves."""

    @abc.abstractmethod
    def resolve(self, mixture) -> Static | Routed:
        """Static weights or a routed pair for `mixture` (its experts, in its order)."""


@dataclass(frozen=True, eq=False)
class Static(WeightSource):
    """Fixed expert weights: [K] global, [B, K] per row, [B, T, K] per token; None = the base model (w = 0,
    the LoRA path skipped). Anything tensor-like or a {expert name: weight} dict; validated by the mixture."""

    weights: object = None

    def resolve(self, _mixture) -> Static:
        return self


@dataclass(frozen=True, eq=False)
class Routed(WeightSource):
    """Input-dependent weights: a router, and the gate that turns its logits into weights (ignored when the
    router outputs weights)."""

    router: object  # an axial.mixture.routing.Router
    gate: object = None  # its axial.mixture.routing.GateConfig; None = the default gate

    def resolve(self, _mixture) -> Routed:
        return self
