"""Helpers for the serve tests: run the app under uvicorn in a thread on a free port; slow the model down."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from axial.serve import ServeConfig, create_app
from axial.serve.server import GracefulServer, uvicorn_config


@contextlib.contextmanager
def slow_steps(engine, seconds: float):
    """Make every forward pass take at least `seconds`, so a test can act while a batch is running."""
    handle = engine.model.register_forward_pre_hook(lambda *_: time.sleep(seconds))
    try:
        yield
    finally:
        handle.remove()


class Running:
    def __init__(self, server: GracefulServer, thread: threading.Thread, port: int):
        self.server, self.thread, self.port = server, thread, port
        self.url = f"http://127.0.0.1:{port}"
        self.state = server.config.app.state.axial

    def client(self, api_key: str = "unused", **kw):
        import openai

        return openai.OpenAI(base_url=self.url + "/v1", api_key=api_key, max_retries=0, **kw)

    def sigterm(self) -> None:
        """What uvicorn does on SIGTERM (signal handlers only exist in the main thread)."""
        import signal

        self.server.handle_exit(signal.SIGTERM, None)


@contextlib.contextmanager
def running(engine, api_keys=(), **config):
    config.setdefault("max_tokens", 64)
    cfg = ServeConfig(model="tiny", **config)
    app = create_app(engine, cfg, api_keys)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = GracefulServer(uvicorn_config(app, cfg, log_level="warning"))  # the settings `axial serve` uses
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield Running(server, thread, port)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
