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
    axes: str | None = None  # axes YAML/JSON file; None = the built-in axes
    # The model id clients send for the base model; sources are served as "<name>:<source name>".
    # Empty: the model spec itself (a folder's basename).
    name: str = ""
    # source name -> weight source (axial.sources grammar), served as "<name>:<source name>" beside the default
    # presets (one per axis expert, "balanced", "safe"; a declared name replaces a default of the same name).
    # Sources that read files (mocae:DIR, pref:...?anchors=FILE) can only be used by requests if declared here.
    sources: dict[str, str] = field(default_factory=dict)
    # A HoE router-expert set (`axial train-hoe`) over the served experts: adds the presets hoe-balanced and
    # hoe-safe (HoE preference routing) beside balanced and safe (plain linear weight mixing).
    hoe: str = ""
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
    # Slow or idle clients (axial/serve/connections.py): a request head must arrive within header_timeout_s of
    # the connection opening (or of the previous response), its body within body_timeout_s of the head; idle
    # keep-alive connections close after keep_alive_s. At max_connections open connections, the ones waiting
    # for a request are closed, longest-waiting first, to admit new ones. 0 = 2 x (max_queue + max_batch) + 32.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    max_connections: int = 0
    dtype: str = "auto"
    device: str = "auto"

    def connection_budget(self) -> int:
        """Open connections allowed: every admissible request (queue + batch) twice over (their 429s and
        streams in flight) and room for /health and /metrics."""
        return self.max_connections or 2 * (self.max_queue + self.max_batch) + 32

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
        for key in ("header_timeout_s", "body_timeout_s", "keep_alive_s"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise AxialError(f"ServeConfig.{key}: must be a finite number > 0, got {value}")
        if self.max_connections < 0:
            raise AxialError(f"ServeConfig.max_connections: must be >= 0 (0 = automatic), got {self.max_connections}")
        if self.max_connections and self.max_connections < self.max_queue + self.max_batch + 2:
            raise AxialError(f"ServeConfig.max_connections: {self.max_connections} cannot hold max_queue + max_batch "
                             f"({self.max_queue} + {self.max_batch}) requests plus /health; use at least "
                             f"{self.max_queue + self.max_batch + 2} (or 0 = automatic)")
        if self.hoe and not self.experts:
            raise AxialError("ServeConfig.hoe: a HoE set routes over experts; give --experts (the set's, in its order)")
        for name, spec in self.sources.items():
            if not name or ":" in name or not isinstance(spec, str) or not spec.strip():
                raise AxialError(f"ServeConfig.sources: '{name}' must be a name without ':' mapping to a source "
                                 "string (e.g. safe=pref:harmless=0.6,helpful=0.4)")
