"""`axial serve` as a real process on loopback for the reliability tests, and raw HTTP/1.1 on one socket.

Raw sockets rather than an HTTP client: the tests need to hold connections open, half-send requests and check
that a keep-alive connection survives an error, which clients hide.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import axial

# Subprocesses run the same axial as the tests (benchmarks/reliability_probes.py --baseline tests an old one);
# they start with python -P so that the current folder cannot shadow it.
AXIAL_SRC = str(Path(axial.__file__).resolve().parents[1])

# The server the reliability tests share: a small queue, so its connection budget is 2 x (4 + 2) + 32 = 44
# (the default formula, which gives 192 at the default queue of 64), and short timeouts.
SERVER_BUDGET = 2 * (4 + 2) + 32
HEADER_S, BODY_S, KEEP_ALIVE_S = 1.5, 1.5, 1.0
SERVER_ARGS = ("--name", "tiny", "--max-queue", "4", "--max-batch", "2", "--max-tokens", "480",
               "--header-timeout-s", str(HEADER_S), "--body-timeout-s", str(BODY_S), "--keep-alive-s", str(KEEP_ALIVE_S))


def _supported(args: tuple[str, ...]) -> tuple[str, ...]:
    """Drop the timeout flags when the axial under test predates them (a --baseline run): it is then probed
    with its own defaults, which is what the probes are about."""
    import dataclasses

    from axial.serve.config import ServeConfig

    if "header_timeout_s" in {f.name for f in dataclasses.fields(ServeConfig)}:
        return args
    return args[:args.index("--header-timeout-s")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_process(model_dir, *args: str, experts=(), start_timeout_s: float = 120.0):
    """Run `axial serve --model model_dir ...` until the block ends (SIGTERM, then SIGKILL after 20 s)."""
    port = free_port()
    cmd = [sys.executable, "-P", "-m", "axial.cli", "serve", "--model", str(model_dir), "--port", str(port),
           *_supported(args)]
    for d in experts:
        cmd += ["--experts", str(d)]
    env = {**os.environ, "PYTHONPATH": AXIAL_SRC, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = open(os.devnull, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"axial serve exited with {proc.returncode}: {proc.stderr.read()[-3000:]}")
            assert time.monotonic() < deadline, "axial serve did not come up"
            try:
                with connect(port) as s:
                    if request(s, "GET", "/health")[0] == 200:
                        break
            except OSError:
                time.sleep(0.2)
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def connect(port: int, timeout: float = 30.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def request(sock: socket.socket, method: str, path: str, body: bytes | dict | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Send one HTTP/1.1 request on `sock` (kept alive) and read the whole response."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
    return read_response(sock)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response (got {buf[:200]!r})")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            body, rest = body + rest[:size], rest[size + 2:]
            if size == 0:
                return status, headers, body
    length = int(headers.get("content-length", 0))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]
