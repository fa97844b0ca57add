"""The one judge interface every benchmark, MORA and the Pareto sweep score with.

A judge scores a response to a prompt on one axis (`score`) and compares two responses (`compare`).
Every concrete kind (axial's own Bradley-Terry reward model, HF sequence classifiers, local or remote
generative judges) is built from one spec string by `load_judge`, so reports can name the judge they used
and a user can swap it on the command line.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

from axial.data.records import Message
from axial.errors import AxialError

SPEC_HELP = ("embedded | rm:DIR | hf-cls:ID_OR_PATH[#LABEL] | hf-gen:ID_OR_PATH | openai:MODEL "
             "(OpenAI-compatible endpoint; env AXIAL_JUDGE_BASE_URL / AXIAL_JUDGE_API_KEY)")


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


def load_judge(spec: str, axis: str | None = None) -> Judge:
    """Build a judge from a spec string (see SPEC_HELP). `axis` picks the prompt template / checks the RM."""
    if not isinstance(spec, str) or not spec.strip():
        raise AxialError(f"judge spec {spec!r}: empty; use {SPEC_HELP}")
    spec = spec.strip()
    if axis is not None:
        from axial.axes import get_axis

        get_axis(axis)  # raises a clear error for an unknown axis
    kind, _, arg = spec.partition(":")
    if spec == "embedded":
        from axial.rewards.generative import HFGenerativeJudge

        return HFGenerativeJudge("embedded", axis=axis, weak=True)
    if kind == "rm":
        from axial.rewards.bradley_terry import BTJudge

        _need_arg(spec, arg, "a reward model folder made by `axial train-reward`")
        return BTJudge.load(arg, axis=axis)
    if kind == "hf-cls":
        from axial.rewards.hf_classifier import HFClassifierJudge

        _need_arg(spec, arg, "an HF model id or folder, optionally #LABEL")
        model, _, label = arg.partition("#")
        return HFClassifierJudge(model, label=label or None, axis=axis)
    if kind == "hf-gen":
        from axial.rewards.generative import HFGenerativeJudge

        _need_arg(spec, arg, "an HF causal LM id or folder")
        return HFGenerativeJudge(arg, axis=axis, weak=False)
    if kind == "openai":
        from axial.rewards.generative import OpenAIJudge

        _need_arg(spec, arg, "a model name served by the endpoint")
        return OpenAIJudge(arg, axis=axis)
    raise AxialError(f"judge spec '{spec}': unknown kind '{kind}'; use {SPEC_HELP}")


def _need_arg(spec: str, arg: str, what: str) -> None:
    if not arg.strip():
        raise AxialError(f"judge spec '{spec}': nothing after ':'; expected {what}")
