"""A variant = (base model, expert adapters, weight source): the one thing eval, pareto, chat and serve load.

Weight sources (strings, CLI-friendly), all served by the one mixture layer (axial.mixture):
  base                      the base model alone (w = 0; with experts given they stay attached, inactive)
  uniform                   every expert at 1/K (the uniform merge, computed exactly at the output level)
  expert:NAME               one expert alone (w = one-hot); an unknown NAME is an error, never the base
  weights:a=0.5,b=0.5       raw expert weights, NOT renormalised (weights:helpful=1.5 extrapolates; experts
                            not named get 0) — for interpolation sweeps and ablations
  pref:helpful=0.7,...      a preference over the axes, validated and normalised to the simplex, mapped to
                            expert weights by HoE preference routing (axial.preference); anchors default to
                            the experts (axis experts, merged experts); `pref:...?anchors=FILE` reads anchors
                            (with routers) from a JSON file (axial.preference.load_anchors)
  mocae:DIR                 a trained router from DIR: `axial.mocae.load_router(DIR, mixture) -> (router, gate)`

Several variants may share one base model (`load_variant(spec, base=(model, tok))`): the experts are attached
once and each variant only changes the weight source, so call `variant.activate()` (generate() does) before
using a variant after another one was loaded on the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from axial.config import Config
from axial.errors import AxialError

SOURCES = ("base", "uniform", "expert:NAME", "weights:NAME=W,...", "pref:AXIS=W,...", "mocae:DIR")
_NEEDS_ARG = {"expert": "expert:helpful", "weights": "weights:helpful=0.5,honest=0.5",
              "pref": "pref:helpful=0.7,harmless=0.3", "mocae": "mocae:runs/router"}


@dataclass
class VariantSpec(Config):
    model: str = "embedded"
    experts: list[str] = field(default_factory=list)
    source: str = "base"
    name: str = ""
    dtype: str = "auto"
    device: str = "auto"

    def validate(self) -> None:
        if not self.source:
            raise AxialError("VariantSpec.source: empty")
        kind, _, arg = self.source.partition(":")
        if kind not in ("base", "uniform", "expert", "weights", "pref", "mocae"):
            raise AxialError(f"VariantSpec.source: unknown source {self.source!r}; use one of {list(SOURCES)}")
        if kind in ("base", "uniform") and arg:
            raise AxialError(f"VariantSpec.source: '{kind}' takes no argument, got {self.source!r}")
        if kind in _NEEDS_ARG and not arg:
            raise AxialError(f"VariantSpec.source: '{kind}:' needs an argument, e.g. {_NEEDS_ARG[kind]}")
        if kind != "base" and not self.experts:
            raise AxialError(f"VariantSpec.experts: source {self.source!r} needs expert adapter folders")
        if not self.name:
            self.name = self.source

    @property
    def label(self) -> str:
        return self.name or self.source


@dataclass
class LoadedVariant:
    spec: VariantSpec
    model: object
    tokenizer: object
    mixture: object | None = None
    # What activate() applies: static expert weights, or a router with its gate.
    weights: object = None
    router: object = None
    gate: object = None

    @property
    def name(self) -> str:
        return self.spec.label

    def activate(self) -> LoadedVariant:
        if self.mixture is not None:
            self.mixture.set_router(self.router, self.gate)
            self.mixture.set_weights(self.weights)
        return self

    def generate(self, prompts, config=None, **kwargs) -> list[str]:
        from axial.generate import generate_responses

        self.activate()
        return generate_responses(self.model, self.tokenizer, prompts, config, **kwargs)


def _parse_weights(arg: str, names: list[str]) -> dict[str, float]:
    out = {}
    for part in (p.strip() for p in arg.split(",") if p.strip()):
        key, eq, value = part.partition("=")
        if not eq:
            raise AxialError(f"source 'weights:{arg}': '{part}' is not name=weight")
        key = key.strip()
        if key not in names:
            raise AxialError(f"source 'weights:{arg}': field '{key}': unknown expert; experts: {names}")
        try:
            out[key] = float(value)
        except ValueError:
            raise AxialError(f"source 'weights:{arg}': field '{key}': {value!r} is not a number") from None
    return out


def _mixture_for(model, experts: list[str]):
    from axial.mixture import Mixture

    current = getattr(model, "axial_mixture", None)
    if current is not None:
        if [e.source for e in current.experts] == [str(Path(e)) for e in experts]:
            return current
        current.detach()
    return Mixture.attach(model, experts)


def load_variant(spec: VariantSpec, *, base=None) -> LoadedVariant:
    """Load a variant. `base=(model, tokenizer)` reuses an already loaded base model (experts attached once)."""
    from axial.models import load_model

    model, tok = base if base is not None else load_model(spec.model, dtype=spec.dtype, device=spec.device)
    variant = LoadedVariant(spec, model, tok)
    if not spec.experts:
        mixture = getattr(model, "axial_mixture", None)
        if mixture is not None:  # a plain base variant on a shared model: the mixture must be off
            variant.mixture = mixture
        return variant.activate()
    mixture = variant.mixture = _mixture_for(model, spec.experts)
    kind, _, arg = spec.source.partition(":")
    k, names = mixture.num_experts, mixture.expert_names
    if kind == "uniform":
        variant.weights = [1.0 / k] * k
    elif kind == "expert":
        if arg not in names:
            raise AxialError(f"source '{spec.source}': unknown expert '{arg}'; experts: {names}")
        variant.weights = [1.0 if n == arg else 0.0 for n in names]
    elif kind == "weights":
        w = _parse_weights(arg, names)
        variant.weights = [w.get(n, 0.0) for n in names]
    elif kind == "pref":
        import torch

        from axial.preference import load_anchors, parse_preference, preference_plan
        from axial.preference.routing import PreferenceRouter

        text, _, query = arg.partition("?")
        option, _, anchors_file = query.partition("=")
        if query and (option != "anchors" or not anchors_file):
            raise AxialError(f"source '{spec.source}': the only option is ?anchors=FILE, got '?{query}'")
        anchors = load_anchors(anchors_file, mixture) if anchors_file else None
        anchors, w1 = preference_plan(mixture, [parse_preference(text)], anchors)
        if any(a.router is not None for a in anchors):
            variant.router = PreferenceRouter(anchors, w1[0], k)
        else:
            variant.weights = (w1[0] @ torch.tensor([a.weights for a in anchors])).tolist()
    elif kind == "mocae":
        try:
            from axial.mocae import load_router
        except ImportError as e:
            raise AxialError(f"source '{spec.source}': needs axial.mocae.load_router, which this installation "
                             f"does not provide ({e})") from e
        variant.router, variant.gate = load_router(arg, mixture)
    return variant.activate()
