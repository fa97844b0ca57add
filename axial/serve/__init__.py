"""OpenAI-compatible serving with per-request expert mixtures and batching. See axial/serve/README.md."""

from axial._lazy import lazy_exports

# FastAPI / uvicorn are the optional `serve` extra, and the engine imports transformers: load them on first use.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "ServeConfig": "config", "Engine": "engine", "GenRequest": "engine", "create_app": "app",
    "load_engine": "server", "serve": "server",
})
