"""`axial serve`: the OpenAI-compatible server (mirrors `axial.serve.serve`)."""

from __future__ import annotations

import typer

from axial.errors import AxialError


def parse_preset(text: str) -> tuple[str, dict[str, float]]:
    """'safe=harmless=0.6,helpful=0.4' -> ('safe', {'harmless': 0.6, 'helpful': 0.4})."""
    name, _, spec = text.partition("=")
    pref: dict[str, float] = {}
    for item in spec.split(","):
        axis, _, value = item.partition("=")
        try:
            pref[axis.strip()] = float(value)
        except ValueError:
            raise AxialError(f"--preset '{text}': expected NAME=AXIS=WEIGHT,AXIS=WEIGHT,...") from None
    if not name.strip() or not spec:
        raise AxialError(f"--preset '{text}': expected NAME=AXIS=WEIGHT,AXIS=WEIGHT,...")
    return name.strip(), pref


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_cmd(
        model: str = typer.Option("embedded", help="embedded | HF hub id | model folder | .gguf file"),
        experts: list[str] = typer.Option([], "--experts", help="expert adapter folder (repeat per expert)"),
        router: str | None = typer.Option(None, help="MoCaE router folder: enables routing 'mocae'"),
        axes: str | None = typer.Option(None, help="axes YAML/JSON file (default: the built-in axes)"),
        name: str = typer.Option("", help="model id clients use (default: from --model)"),
        preset: list[str] = typer.Option([], "--preset", help="NAME=AXIS=W,AXIS=W served as <model>:NAME "
                                         "(repeatable; default: one per expert, balanced, safe)"),
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
        dtype: str = typer.Option("auto", help="auto | fp32 | bf16"),
        device: str = typer.Option("auto", help="auto | cpu | cuda"),
    ):
        """Serve a model and its experts over an OpenAI-compatible HTTP API with per-request preferences."""
        from axial.serve.config import ServeConfig
        from axial.serve.server import serve

        config = ServeConfig(
            model=model, experts=experts, router=router, axes=axes, name=name, presets=dict(map(parse_preset, preset)),
            host=host, port=port, max_batch=max_batch, max_queue=max_queue, max_tokens=max_tokens,
            batch_window_ms=batch_window_ms, drain_timeout_s=drain_timeout_s, max_body_bytes=max_body_bytes,
            dtype=dtype, device=device)
        serve(config, api_keys=[api_key] if api_key else [])
