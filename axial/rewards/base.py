"""The one judge interface every benchmark, MORA and the Pareto sweep score with.

A judge scores a response to a prompt on one axis (`score`) and compares two responses (`compare`).
Every concrete kind (axial's own Bradley-Terry reward model, HF sequence classifiers, local or remote
generative judges) is built from one spec string by `axial.rewards.registry.load_judge`, so reports can name
the judge they used and a user can swap it on the command line.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

from axial.data.records import Message
from axial.errors import AxialError


class Judge(abc.ABC):
    """Scores responses on one axis. Higher is better; safety/truth classifiers return P(safe)/P(true)."""

    name: str = "judge"
    kind: str = "judge"
    axis: str | None = None
    # True for the embedded model used as a judge: every report must label its numbers "weak judge".
    weak: bool = False
    path: str | None = None
    # Filled by axial.rewards.validate (or loaded from a reward model's saved metrics); reports print it.
    validation: dict[str, Any] | None = None

    @abc.abstractmethod
    def score(self, prompts: Sequence[Sequence[Message]], responses: Sequence[str]) -> list[float]:
        """One score per (prompt, response) pair, higher = better on the judge's axis."""

    def compare(self, prompts: Sequence[Sequence[Message]], responses_a: Sequence[str],
                responses_b: Sequence[str]) -> list[float]:
        """P(response A is better than response B) per row, in [0, 1]."""
        _check_lengths(prompts, responses_a, responses_b)
        sa = self.score(prompts, responses_a)
        sb = self.score(prompts, responses_b)
        return [_sigmoid(a - b) for a, b in zip(sa, sb, strict=True)]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "axis": self.axis, "path": self.path, "weak": self.weak,
                "validation": self.validation}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, axis={self.axis!r}, weak={self.weak})"


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _check_lengths(prompts, *response_lists) -> None:
    for responses in response_lists:
        if len(responses) != len(prompts):
            raise AxialError(f"judge: got {len(prompts)} prompts but {len(responses)} responses")
