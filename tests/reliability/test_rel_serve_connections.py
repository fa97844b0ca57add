"""Slow, idle and half-open clients cannot lock others out of a real `axial serve` (issue 15, item 1).

The server (rel_server.SERVER_ARGS) has a connection budget of 44 and head/body/keep-alive timeouts of
1.5/1.5/1.0 s; every test opens a bounded number of sockets on loopback and closes them.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time

import pytest
from rel_server import BODY_S, HEADER_S, KEEP_ALIVE_S, SERVER_BUDGET, connect, read_response, request

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.fixture(scope="module")
def port(rel_server):
    return rel_server


@contextlib.contextmanager
def idle_sockets(port: int, n: int, partial: bytes = b""):
    """n connections that send `partial` (e.g. half a request head) and then nothing."""
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if partial:
                s.sendall(partial)
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def closed_by_server(s: socket.socket, wait_s: float) -> bool:
    """True when the server closed `s` (EOF, possibly after a 408) within `wait_s`."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                return True
            if not data:
                return True
    return False


def healthy(port: int) -> bool:
    with connect(port, timeout=5) as s:
        status, headers, body = request(s, "GET", "/health")
    return status == 200 and json.loads(body)["status"] == "ok"


def chat_ok(port: int) -> bool:
    with connect(port, timeout=30) as s:
        status, _, body = request(s, "POST", "/v1/chat/completions", CHAT)
    return status == 200 and json.loads(body)["usage"]["completion_tokens"] == 4


def shed_counter(port: int) -> str:
    with connect(port, timeout=5) as s:
        text = request(s, "GET", "/metrics")[2].decode()
    lines = [x for x in text.splitlines() if x.startswith("axial_connections_closed_total") and "shed_idle" in x]
    return lines[0] if lines else "no axial_connections_closed_total{reason=shed_idle}"


HALF_HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize("partial", [b"", HALF_HEAD], ids=["silent", "half-head"])
def test_idle_sockets_beyond_the_budget_are_shed_and_others_served(port, partial, observe):
    n = SERVER_BUDGET + 30
    with idle_sockets(port, n, partial) as socks:
        # The moment the budget is exceeded, the longest-idle sockets are closed to admit new ones: /health and a
        # real request are served at once (before the fix: plain-text 503 for everyone).
        t0 = time.monotonic()
        ok = healthy(port) and chat_ok(port)
        took = time.monotonic() - t0
        shed = sum(closed_by_server(s, 0.5) for s in socks[:40])
        observe(f"{n} idle sockets open (budget {SERVER_BUDGET}): /health and a chat request "
                f"{'answered 200' if ok else 'NOT answered'} in {took:.2f} s; {shed} of the 40 oldest shed; "
                f"/metrics: {shed_counter(port)}")
        assert ok
        assert took < HEADER_S, "served only after the idle sockets timed out"
        assert shed >= 30, f"only {shed} of the oldest 40 idle sockets were shed"


def test_slowloris_trickle_is_cut_off_at_the_header_timeout(port, observe):
    with connect(port) as s:
        t0 = time.monotonic()
        for byte in HALF_HEAD:  # one byte every 0.1 s: keeps resetting any idle timer, never completes
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            if closed_by_server(s, 0.1):
                break
        else:
            assert closed_by_server(s, HEADER_S + 2), "a trickling client held its connection"
        took = time.monotonic() - t0
        observe(f"one byte per 0.1 s: closed after {took:.2f} s")
        assert took < HEADER_S + 2


def test_silent_connection_is_closed_at_the_header_timeout(port, observe):
    with idle_sockets(port, 1) as (s,):
        t0 = time.monotonic()
        closed = closed_by_server(s, HEADER_S + 2)
        took = time.monotonic() - t0
        observe(f"closed after {took:.2f} s" if closed else f"still open after {took:.2f} s")
        assert closed and HEADER_S - 0.3 < took < HEADER_S + 2


def test_stalled_body_gets_408_and_the_server_stays_healthy(port, observe):
    with connect(port) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n" + json.dumps(CHAT).encode()[:20])
        t0 = time.monotonic()
        status, headers, body = read_response(s)
        took = time.monotonic() - t0
        observe(f"{status} after {took:.2f} s, `{json.loads(body)['error']['message']}`, then closed; server healthy")
        assert status == 408 and json.loads(body)["error"]["type"] == "invalid_request_error"
        assert BODY_S - 0.3 < took < BODY_S + 2
        assert closed_by_server(s, 2)
    assert healthy(port) and chat_ok(port)


def test_idle_keep_alive_connection_is_closed(port, observe):
    with connect(port) as s:
        assert request(s, "GET", "/health")[0] == 200
        t0 = time.monotonic()
        closed = closed_by_server(s, KEEP_ALIVE_S + 2)
        took = time.monotonic() - t0
        observe(f"closed {took:.2f} s after its response" if closed else f"still open after {took:.2f} s")
        assert closed and took > KEEP_ALIVE_S - 0.3


def test_a_long_stream_outlives_every_timeout(port, observe):
    body = {**CHAT, "max_tokens": 400, "stream": True}
    with connect(port, timeout=60) as s:
        t0 = time.monotonic()
        status, _, data = request(s, "POST", "/v1/chat/completions", body)
        elapsed = time.monotonic() - t0
    events = [json.loads(line[6:]) for line in data.decode().splitlines()
              if line.startswith("data: {")]
    observe(f"{status}, {len(events)} events over {elapsed:.2f} s, finish_reason "
            f"{events[-1]['choices'][0]['finish_reason'] if events else None}")
    assert status == 200 and events[-1]["choices"][0]["finish_reason"] == "length"
