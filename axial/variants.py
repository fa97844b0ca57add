"""A variant = (base model, expert adapters, weight source): the one thing eval, pareto, chat and serve load.

Weight sources (strings, CLI-friendly):
  base                      the base model alone (w = 0)
More sources (uniform, expert:NAME, pref:..., mocae:DIR) are added by the mixture layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from axial.config import Config
from axial.errors import AxialError


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

    @property
    def name(self) -> str:
        return self.spec.label


def load_variant(spec: VariantSpec, *, base=None) -> LoadedVariant:
    """Load a variant. `base=(model, tokenizer)` reuses an already loaded base model."""
    from axial.models import load_model

    if spec.source != "base":
        raise AxialError(f"variant source '{spec.source}': not supported yet")
    model, tok = base if base is not None else load_model(spec.model, dtype=spec.dtype, device=spec.device)
    return LoadedVariant(spec, model, tok)
