"""Connection handling uvicorn lacks: read timeouts for request heads and bodies, and a connection budget that
sheds idle sockets instead of turning every new request away.

uvicorn (0.54, h11) never times out a connection that has not finished sending a request: its keep-alive
timer only runs between requests and is reset by every byte, so a client trickling a header byte at a time,
or one that connects and says nothing, holds its socket forever (uvicorn issue #157 lists
"--timeout-request-start" / "--timeout-request-complete" as never implemented). Its `limit_concurrency` then
answers *every* new request with a plain-text 503 — /health included, and before any API key is checked —
once enough such sockets are open. ASGI middleware cannot help: it runs only after the head is parsed.

`guarded_protocol(limits)` returns a subclass of uvicorn's h11 protocol that adds, per connection:

* **head timeout** (`header_timeout_s`): from the moment a connection opens, or its previous response ends, the
  next request line and headers must be complete within this; otherwise the connection is closed (with a 408
  if part of a request had arrived). A trickle of bytes does not extend it.
* **body timeout** (`body_timeout_s`): the body must be complete within this of its headers; otherwise a 408
  (OpenAI-shaped JSON) is sent, the connection closed, and the request abandoned before it reaches the model.
* **idle timeout** (`keep_alive_s`): uvicorn's own keep-alive timer, between requests.
* **connection budget** (`max_connections`): when a new connection would exceed it, the connections that are
  waiting for a request (idle keep-alive, silent, or half-sent heads), longest-waiting first, are closed to make
  room. Connections with a request in progress are never shed. Only if every connection is busy is the new one
  refused, with a 503 and `Retry-After`. So /health and well-behaved clients get through while idle sockets
  are shed, and nothing is answered 503 merely because idle sockets exist.

Responses themselves (a long stream) are not timed: generation time is bounded by `max_tokens`, and a client
that goes away is noticed by the scheduler (cancellation).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("axial.serve")


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    max_connections: int = 192


def _raw_response(status: int, reason: str, message: str, code: str, extra: str = "") -> bytes:
    """A complete HTTP/1.1 error response written straight to the socket (the connection is closed after it,
    so h11's state machine, which may be mid-request, does not need to agree)."""
    error_type = "invalid_request_error" if status < 500 else "server_error"
    body = json.dumps({"error": {"message": message, "type": error_type, "param": None, "code": code}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n{extra}\r\n")
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with head/body timeouts and idle shedding (see the module docstring)."""

    limits = ConnectionLimits()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._timer = None               # the pending head or body deadline
        self._waiting_since = time.monotonic()  # since when this connection waits for a request head
        self._partial = False            # bytes of the next request have arrived, its head is not complete

    # -- state --------------------------------------------------------------------------------------------------

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _count(self, reason: str) -> None:
        state = getattr(getattr(self.config.app, "state", None), "axial", None)
        if state is not None:
            state.metrics.connections_closed.labels(reason).inc()

    def _arm(self, seconds: float, callback) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close(self, response: bytes = b"") -> None:
        if self.transport.is_closing():
            return
        if response:
            self.transport.write(response)
        self.transport.close()

    # -- uvicorn hooks ------------------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._waiting_since = time.monotonic()
        self._arm(self.limits.header_timeout_s, self._head_timed_out)
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._between_requests():
            self._partial = True
        super().data_received(data)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        cycle = self.cycle
        if cycle is not None and cycle is not before:  # a request head was parsed
            self._partial = False
            if cycle.more_body:
                self._arm(self.limits.body_timeout_s, self._body_timed_out)
            else:
                self._disarm()
        elif cycle is not None and not cycle.more_body and self._timer is not None and not self._between_requests():
            self._disarm()  # the body is complete

    def on_response_complete(self) -> None:
        # Armed before uvicorn's own handling, which may start a pipelined request (handle_events disarms it).
        if not self.transport.is_closing():
            self._waiting_since = time.monotonic()
            self._partial = False
            self._arm(self.limits.header_timeout_s, self._head_timed_out)
        super().on_response_complete()

    # -- timeouts and shedding ----------------------------------------------------------------------------------

    def _head_timed_out(self) -> None:
        self._timer = None
        if not self._between_requests():
            return
        self._count("header_timeout")
        log.debug("closing %s: no complete request head within %ss", self.client, self.limits.header_timeout_s)
        self._close(_raw_response(408, "Request Timeout", f"the request head did not arrive within "
                                  f"{self.limits.header_timeout_s:g} s", "request_timeout") if self._partial else b"")

    def _body_timed_out(self) -> None:
        self._timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or cycle.response_started:
            return
        self._count("body_timeout")
        log.debug("closing %s: request body incomplete after %ss", self.client, self.limits.body_timeout_s)
        self._close(_raw_response(408, "Request Timeout", f"the request body did not arrive within "
                                  f"{self.limits.body_timeout_s:g} s", "request_timeout"))
        # The app waiting for the body gets a disconnect, and anything it sends is dropped.
        cycle.disconnected = True
        cycle.message_event.set()

    def _make_room(self) -> None:
        excess = len(self.connections) - self.limits.max_connections
        idle = sorted((c for c in self.connections if c is not self and isinstance(c, GuardedH11Protocol)
                       and c._between_requests() and not c.transport.is_closing()),
                      key=lambda c: c._waiting_since)
        for victim in idle[:excess]:
            victim._count("shed_idle")
            victim._disarm()
            victim._close()
            # connection_lost removes it from the set later; discard now so the count is right at once.
            self.connections.discard(victim)
        if len(idle) < excess:
            self._count("over_capacity")
            log.warning("%d connections, all with a request in progress: refusing a new one",
                        len(self.connections))
            self.connections.discard(self)
            self._disarm()
            self._close(_raw_response(503, "Service Unavailable", "the server has no free connection slot; "
                                      "retry shortly", "over_capacity", "retry-after: 1\r\n"))


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """The protocol class to pass as uvicorn's `http=`, bound to these limits."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})
