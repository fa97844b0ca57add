"""Load a model (+ experts, + router) into an `Engine` and serve it with uvicorn, stopping gracefully."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from axial.errors import AxialError
from axial.serve.config import ServeConfig
from axial.serve.engine import Engine

log = logging.getLogger("axial.serve")


def served_name(spec: str) -> str:
    path = Path(spec)
    return path.stem if path.suffix == ".gguf" else (path.name if path.is_dir() else spec)


def load_engine(config: ServeConfig) -> Engine:
    """The base model with the experts attached and every declared source resolved (routers loaded once, not
    yet active), so a bad source fails at start-up, not on the first request."""
    from axial.axes import axis_names, load_axes
    from axial.sources import parse_source
    from axial.variants import VariantSpec, load_variant

    axes = axis_names(load_axes(config.axes))
    sources = {}
    for name, spec in config.sources.items():
        try:
            sources[name] = parse_source(spec, axes=axes)
        except AxialError as e:
            raise AxialError(f"ServeConfig.sources.{name}: {e}") from None
    if sources and not config.experts:
        raise AxialError(f"ServeConfig.sources: {sorted(sources)} mix experts; give --experts too")
    variant = load_variant(VariantSpec(model=config.model, experts=config.experts, source="base",
                                       dtype=config.dtype, device=config.device))
    for name, source in sources.items():
        try:
            variant.mixture.resolve(source)
        except AxialError as e:
            raise AxialError(f"ServeConfig.sources.{name}: {e}") from None
    return Engine(variant.model, variant.tokenizer, name=config.name or served_name(config.model),
                  mixture=variant.mixture, sources=sources)


def serve(config: ServeConfig, api_keys: Sequence[str] = ()) -> None:
    """Serve until SIGTERM/SIGINT: then refuse new requests (503), finish the admitted ones within
    `drain_timeout_s` (the rest get a 503), and exit."""
    from axial.serve.app import create_app

    if not api_keys and config.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s without an API key: anyone who can reach this port can use it", config.host)
    app = create_app(load_engine(config), config, api_keys)
    GracefulServer(uvicorn_config(app, config, host=config.host, port=config.port)).run()


def uvicorn_config(app, config: ServeConfig, **kwargs) -> uvicorn.Config:
    """uvicorn settings for `app`: the h11 protocol with head/body timeouts and a connection budget that sheds
    idle sockets (axial.serve.connections) instead of uvicorn's limit_concurrency, which answers every new
    request 503 once idle sockets fill it. The scheduler bounds admitted work; the budget bounds sockets."""
    from axial.serve.connections import ConnectionLimits, guarded_protocol

    limits = ConnectionLimits(header_timeout_s=config.header_timeout_s, body_timeout_s=config.body_timeout_s,
                              keep_alive_s=config.keep_alive_s, max_connections=config.connection_budget())
    kwargs.setdefault("log_level", "info")
    return uvicorn.Config(app, http=guarded_protocol(limits), timeout_keep_alive=config.keep_alive_s,
                          timeout_graceful_shutdown=config.drain_timeout_s + 5, **kwargs)


class GracefulServer(uvicorn.Server):
    """uvicorn.Server that tells the scheduler to drain the moment a stop signal arrives.

    uvicorn alone stops listening and waits for open connections, but the scheduler would not know the
    deadline, and a request arriving on a kept-alive connection would still be admitted.
    """

    def handle_exit(self, sig, frame) -> None:
        self.config.app.state.axial.begin_shutdown()
        super().handle_exit(sig, frame)
