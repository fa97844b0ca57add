"""A variant = (base model, expert adapters, weight source): the one thing eval, pareto, chat, serve and MORA load.

The weight source is any axial.sources source (`base`, `uniform`, `expert:NAME`, `weights:...`, `pref:...`,
`mocae:DIR`, ...; see that module for the grammar). Several variants may share one base model
(`load_variant(spec, base=(model, tok))`): the experts are attached once and each variant only changes the
weight source, so call `variant.activate()` (generate() does) before using a variant after another one was
loaded on the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from axial.config import Config
from axial.errors import AxialError
from axial.sources import Base, Source, parse_source


@dataclass
class VariantSpec(Config):
    model: str = "embedded"
    experts: list[str] = field(default_factory=list)
    source: str = "base"
    name: str = ""
    dtype: str = "auto"
    device: str = "auto"

    def validate(self) -> None:
        try:
            parsed = parse_source(self.source)
        except AxialError as e:
            raise AxialError(f"VariantSpec.source: {e}") from None
        if not isinstance(parsed, Base) and not self.experts:
            raise AxialError(f"VariantSpec.experts: source '{parsed}' needs expert adapter folders")
        if not self.name:
            self.name = self.source

    @property
    def parsed_source(self) -> Source:
        return parse_source(self.source)

    @property
    def label(self) -> str:
        return self.name or self.source


@dataclass
class LoadedVariant:
    spec: VariantSpec
    model: object
    tokenizer: object
    mixture: object | None = None
    source: Source = field(default_factory=Base)

    @property
    def name(self) -> str:
        return self.spec.label

    @property
    def router(self):
        """The router this variant routes with (None for static weights)."""
        if self.mixture is None:
            return None
        return getattr(self.mixture.resolve(self.source), "router", None)

    def activate(self) -> LoadedVariant:
        if self.mixture is not None:
            self.mixture.use(self.source)
        return self

    def generate(self, prompts, config=None, **kwargs) -> list[str]:
        from axial.generate import generate_responses

        self.activate()
        return generate_responses(self.model, self.tokenizer, prompts, config, **kwargs)


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
    variant.mixture = _mixture_for(model, spec.experts)
    variant.source = spec.parsed_source
    variant.mixture.resolve(variant.source)  # a bad source (unknown expert, missing router) fails here
    return variant.activate()
