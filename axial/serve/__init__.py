"""OpenAI-compatible serving with per-request expert mixtures and batching. See axial/serve/README.md."""

from axial.serve.config import ServeConfig
from axial.serve.engine import Engine, GenRequest

__all__ = ["Engine", "GenRequest", "ServeConfig", "create_app", "load_engine", "serve"]


def __getattr__(name):
    # FastAPI / uvicorn are the optional `serve` extra: import them only when the server is used.
    if name == "create_app":
        from axial.serve.app import create_app

        return create_app
    if name in ("load_engine", "serve"):
        from axial.serve import server

        return getattr(server, name)
    raise AttributeError(name)
