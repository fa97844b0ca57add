"""`ServeConfig`: everything `axial serve` takes except API keys (secrets never go into a saved config)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from axial.config import Config
from axial.errors import AxialError


@dataclass
class ServeConfig(Config):
    model: str = "embedded"
    experts: list[str] = field(default_factory=list)
    router: str | None = None
    axes: str | None = None  # axes YAML/JSON file; None = the built-in axes
    # The model id clients send for the base model; presets are served as "<name>:<preset>".
    # Empty: the model spec itself (a folder's basename).
    name: str = ""
    # preset name -> preference ({axis: weight}); empty: one preset per expert, "balanced" and "safe".
    presets: dict[str, dict[str, float]] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch: int = 16
    max_queue: int = 64
    max_tokens: int = 512
    # How long the first request of a batch waits for company before the batch starts.
    batch_window_ms: float = 10.0
    # SIGTERM: unfinished requests get this long, then a 503.
    drain_timeout_s: float = 30.0
    max_body_bytes: int = 1_000_000
    dtype: str = "auto"
    device: str = "auto"

    def validate(self) -> None:
        for key in ("max_batch", "max_queue", "max_tokens", "max_body_bytes"):
            if getattr(self, key) < 1:
                raise AxialError(f"ServeConfig.{key}: must be >= 1, got {getattr(self, key)}")
        if not 0 < self.port < 65536:
            raise AxialError(f"ServeConfig.port: must be in 1..65535, got {self.port}")
        for key in ("batch_window_ms", "drain_timeout_s"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise AxialError(f"ServeConfig.{key}: must be a finite number >= 0, got {value}")
        for preset, pref in self.presets.items():
            if not preset or ":" in preset or not isinstance(pref, dict):
                raise AxialError(f"ServeConfig.presets: '{preset}' must be a name without ':' mapping to "
                                 "{axis: weight}")
