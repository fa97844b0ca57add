"""`axial serve`: the OpenAI-compatible server (mirrors `axial.serve.serve`)."""

from __future__ import annotations

import typer

from axial import cliopts
from axial.errors import AxialError
from axial.sources import SOURCE_OPTION_HELP


def parse_preset(text: str) -> tuple[str, str]:
    """Deprecated --preset 'safe=harmless=0.6,helpful=0.4' -> ('safe', 'pref:harmless=0.6,helpful=0.4')."""
    name, _, spec = text.partition("=")
    if not name.strip() or not spec or "=" not in spec:
        raise AxialError(f"--preset '{text}': expected NAME=AXIS=WEIGHT,AXIS=WEIGHT,...")
    return name.strip(), f"pref:{spec}"


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_cmd(
        model: str = typer.Option("embedded", help=cliopts.MODEL_HELP),
        experts: list[str] = typer.Option([], "--experts", help=cliopts.EXPERTS_HELP),
        source: list[str] = typer.Option([], "--source", help="NAME=SOURCE, served as <model>:NAME and usable "
                                         "by requests (repeatable; beside the default presets: one per axis "
                                         "expert, balanced, safe). " + SOURCE_OPTION_HELP),
        router: str | None = typer.Option(None, hidden=True, help="deprecated: --source mocae=mocae:DIR"),
        preset: list[str] = typer.Option([], "--preset", hidden=True, help="deprecated: --source NAME=pref:..."),
        hoe: str = typer.Option("", help="a HoE router-expert set over --experts (`axial train-hoe`): adds the "
                                         "presets hoe-balanced and hoe-safe (balanced and safe are plain linear "
                                         "weight mixing)"),
        axes: str | None = typer.Option(None, help="axes YAML/JSON file (default: the built-in axes)"),
        name: str = typer.Option("", help="model id clients use (default: from --model)"),
        host: str = typer.Option("127.0.0.1", help="interface to bind; anything but loopback wants --api-key"),
        port: int = typer.Option(8000),
        api_key: str | None = typer.Option(None, envvar="AXIAL_API_KEY", show_envvar=True,
                                           help="require 'Authorization: Bearer KEY' (prefer the env var: "
                                                "command lines are visible to other users)"),
        max_batch: int = typer.Option(16, help="rows per forward pass"),
        max_queue: int = typer.Option(64, help="waiting requests beyond this get 429 + Retry-After"),
        max_tokens: int = typer.Option(512, help="largest max_tokens a request may ask for"),
        batch_window_ms: float = typer.Option(10.0, help="how long a batch waits to fill up"),
        drain_timeout_s: float = typer.Option(30.0, help="on SIGTERM, time to finish admitted requests"),
        max_body_bytes: int = typer.Option(1_000_000),
        header_timeout_s: float = typer.Option(10.0, help="a request's head must arrive within this (slow or "
                                               "silent connections are closed)"),
        body_timeout_s: float = typer.Option(30.0, help="a request's body must arrive within this of its head "
                                             "(else 408)"),
        keep_alive_s: float = typer.Option(5.0, help="idle keep-alive connections close after this"),
        max_connections: int = typer.Option(0, help="open connections; beyond it idle ones are closed to admit "
                                            "new ones (0 = 2 x (max-queue + max-batch) + 32)"),
        dtype: str = typer.Option("auto", help=cliopts.DTYPE_HELP),
        device: str = typer.Option("auto", help=cliopts.DEVICE_HELP),
    ):
        """Serve a model and its experts over an OpenAI-compatible HTTP API with per-request preferences."""
        from axial.serve.config import ServeConfig
        from axial.serve.server import serve

        sources = cliopts.pairs(source, "--source")
        for item in preset:
            cliopts.deprecated("--preset NAME=AXIS=W,...", "--source NAME=pref:AXIS=W,...")
            key, spec = parse_preset(item)
            sources.setdefault(key, spec)
        if router:
            cliopts.deprecated("--router DIR", "--source mocae=mocae:DIR")
            sources.setdefault("mocae", f"mocae:{router}")
        config = ServeConfig(
            model=model, experts=cliopts.experts_list(experts), axes=axes, name=name, sources=sources, hoe=hoe,
            host=host, port=port, max_batch=max_batch, max_queue=max_queue, max_tokens=max_tokens,
            batch_window_ms=batch_window_ms, drain_timeout_s=drain_timeout_s, max_body_bytes=max_body_bytes,
            header_timeout_s=header_timeout_s, body_timeout_s=body_timeout_s, keep_alive_s=keep_alive_s,
            max_connections=max_connections, dtype=dtype, device=device)
        serve(config, api_keys=[api_key] if api_key else [])
