"""Judge spec strings -> judges: one table of kinds, so a new kind of judge is one entry, not an edit of the
Judge base class (which every kind imports, and which must therefore import none of them).

    embedded | rm:DIR | hf-cls:ID_OR_PATH[#LABEL] | hf-gen:ID_OR_PATH | openai:MODEL
"""

from __future__ import annotations

from collections.abc import Callable

from axial.errors import AxialError
from axial.rewards.base import Judge

SPEC_HELP = ("embedded | rm:DIR | hf-cls:ID_OR_PATH[#LABEL] | hf-gen:ID_OR_PATH | openai:MODEL "
             "(OpenAI-compatible endpoint; env AXIAL_JUDGE_BASE_URL / AXIAL_JUDGE_API_KEY)")


def _embedded(_arg: str, axis: str | None) -> Judge:
    from axial.rewards.generative import HFGenerativeJudge

    return HFGenerativeJudge("embedded", axis=axis, weak=True)


def _rm(arg: str, axis: str | None) -> Judge:
    from axial.rewards.bradley_terry import BTJudge

    return BTJudge.load(arg, axis=axis)


def _hf_cls(arg: str, axis: str | None) -> Judge:
    from axial.rewards.hf_classifier import HFClassifierJudge

    model, _, label = arg.partition("#")
    return HFClassifierJudge(model, label=label or None, axis=axis)


def _hf_gen(arg: str, axis: str | None) -> Judge:
    from axial.rewards.generative import HFGenerativeJudge

    return HFGenerativeJudge(arg, axis=axis, weak=False)


def _openai(arg: str, axis: str | None) -> Judge:
    from axial.rewards.generative import OpenAIJudge

    return OpenAIJudge(arg, axis=axis)


# kind -> (factory(arg, axis), what the argument is; None = the kind takes no argument)
JUDGE_KINDS: dict[str, tuple[Callable[[str, str | None], Judge], str | None]] = {
    "embedded": (_embedded, None),
    "rm": (_rm, "a reward model folder made by `axial train-reward`"),
    "hf-cls": (_hf_cls, "an HF model id or folder, optionally #LABEL"),
    "hf-gen": (_hf_gen, "an HF causal LM id or folder"),
    "openai": (_openai, "a model name served by the endpoint"),
}


def register_judge_kind(kind: str, factory: Callable[[str, str | None], Judge], argument: str | None) -> None:
    """Add a judge kind: `factory(arg, axis) -> Judge`; `argument` describes what follows 'kind:'."""
    JUDGE_KINDS[kind] = (factory, argument)


def load_judge(spec: str, axis: str | None = None) -> Judge:
    """Build a judge from a spec string (see SPEC_HELP). `axis` picks the prompt template / checks the RM."""
    if not isinstance(spec, str) or not spec.strip():
        raise AxialError(f"judge spec {spec!r}: empty; use {SPEC_HELP}")
    spec = spec.strip()
    if axis is not None:
        from axial.axes import get_axis

        get_axis(axis)  # raises a clear error for an unknown axis
    kind, sep, arg = spec.partition(":")
    if kind not in JUDGE_KINDS:
        raise AxialError(f"judge spec '{spec}': unknown kind '{kind}'; use {SPEC_HELP}")
    factory, argument = JUDGE_KINDS[kind]
    if argument is None and sep:
        raise AxialError(f"judge spec '{spec}': '{kind}' takes no argument")
    if argument is not None and not arg.strip():
        raise AxialError(f"judge spec '{spec}': nothing after ':'; expected {argument}")
    return factory(arg, axis)
