"""Admission and batching: a bounded queue in front of one worker thread that runs the engine batch by batch.

Every admitted request gets exactly one ending: finished (stop / length), cancelled by its client, or an error
(generation failed, server shut down before it could finish). The queue never grows past `max_queue`; a
request beyond that is refused at once (HTTP 429) instead of waiting in an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from axial.serve.engine import Engine, GenRequest
from axial.serve.metrics import Metrics

log = logging.getLogger("axial.serve")


class QueueFull(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"queue full; retry after {retry_after}s")
        self.retry_after = retry_after


class Draining(Exception):
    """The server is shutting down and takes no new requests."""


@dataclass
class Event:
    kind: str  # "text" | "done" | "error"
    text: str = ""
    reason: str = ""  # done: stop | length | cancelled
    status: int = 0  # error: HTTP status
    tokens: int = 0  # completion tokens so far
    logprobs: object = None  # done: the row's engine.RowLogprobs, when it asked for log-probabilities


class Row:
    """One admitted request. The worker thread writes events; the request's asyncio task reads them."""

    def __init__(self, request: GenRequest, loop: asyncio.AbstractEventLoop, metrics: Metrics):
        self.request = request
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.admitted = time.monotonic()
        self.first_text: float | None = None
        self.ended = False
        self._cancelled = threading.Event()
        self._loop = loop
        self._metrics = metrics

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def emit(self, text: str, tokens: int) -> None:
        if self.ended:  # e.g. failed by the shutdown deadline while its batch was mid-step
            return
        if self.first_text is None:
            self.first_text = time.monotonic()
            self._metrics.first_token.observe(self.first_text - self.admitted)
        self._put(Event("text", text=text, tokens=tokens))

    def finish(self, reason: str, tokens: int, logprobs=None) -> None:
        self._end(Event("done", reason=reason, tokens=tokens, logprobs=logprobs))

    def fail(self, status: int, message: str) -> None:
        self._end(Event("error", text=message, status=status))

    def _end(self, event: Event) -> None:
        if self.ended:
            return
        self.ended = True
        self._metrics.finished.labels(event.reason or "error").inc()
        self._metrics.tokens.labels("completion").inc(event.tokens)
        self._put(event)

    def _put(self, event: Event) -> None:
        try:
            self._loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the event loop is gone (server stopped); nobody is left to tell
            pass


class Scheduler:
    """Collect concurrent requests for up to `batch_window_s` (or until `max_batch`), then run them together."""

    def __init__(self, engine: Engine, metrics: Metrics, *, max_batch: int, max_queue: int,
                 batch_window_s: float):
        self.engine = engine
        self.metrics = metrics
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.batch_window_s = batch_window_s
        self._queue: deque[Row] = deque()
        self._running: list[Row] = []
        self._cond = threading.Condition()
        self._draining = False
        self._stopped = False
        self._batch_seconds = 1.0  # running mean of one batch's duration, for Retry-After
        self._thread = threading.Thread(target=self._work, name="axial-serve-worker", daemon=True)
        metrics.queue_depth.set_function(lambda: len(self._queue))
        metrics.running.set_function(lambda: sum(not r.ended for r in self._running))

    def start(self) -> None:
        self._thread.start()

    @property
    def draining(self) -> bool:
        return self._draining

    def submit(self, request: GenRequest, loop: asyncio.AbstractEventLoop) -> Row:
        with self._cond:
            if self._draining:
                raise Draining()
            if len(self._queue) >= self.max_queue:
                raise QueueFull(self._retry_after())
            row = Row(request, loop, self.metrics)
            self._queue.append(row)
            self._cond.notify_all()
        self.metrics.tokens.labels("prompt").inc(len(request.prompt_ids))
        return row

    def _retry_after(self) -> int:
        batches_ahead = math.ceil((len(self._queue) + 1) / self.max_batch)
        return max(1, min(60, math.ceil(batches_ahead * self._batch_seconds)))

    def cancel(self, row: Row) -> None:
        """The client is gone: drop the row from the queue, or make the running batch stop generating it."""
        row._cancelled.set()
        with self._cond:
            if row in self._queue:
                self._queue.remove(row)
                row.finish("cancelled", 0)

    def drain(self, deadline_s: float) -> None:
        """Stop admitting; let queued and running rows finish; after `deadline_s`, end the rest with a 503."""
        with self._cond:
            if self._draining:
                return
            self._draining = True
            self._cond.notify_all()
        timer = threading.Timer(deadline_s, self._abort)
        timer.daemon = True
        timer.start()

    def _abort(self) -> None:
        with self._cond:
            pending = list(self._queue) + [r for r in self._running if not r.ended]
            self._queue.clear()
        if pending:
            log.warning("shutdown deadline passed: ending %d unfinished request(s) with 503", len(pending))
        for row in pending:
            row._cancelled.set()
            row.fail(503, "the server shut down before this request finished")

    def close(self, timeout: float | None = None) -> None:
        """Stop the worker once the queue is empty (call `drain` first to refuse new work)."""
        with self._cond:
            self._draining = True
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _next_batch(self) -> list[Row] | None:
        with self._cond:
            while not self._queue:
                if self._stopped:
                    return None
                self._cond.wait()
            deadline = self._queue[0].admitted + self.batch_window_s
            while len(self._queue) < self.max_batch and not self._draining:
                left = deadline - time.monotonic()
                if left <= 0 or not self._queue:
                    break
                self._cond.wait(left)
            if not self._queue:
                return []
            key = self._queue[0].request.batch_key
            batch = [r for r in self._queue if r.request.batch_key == key][:self.max_batch]
            for r in batch:
                self._queue.remove(r)
            self._running = batch
            return batch

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                continue
            self.metrics.batch_size.observe(len(batch))
            start = time.monotonic()
            try:
                self.engine.run(batch)
            except Exception as e:  # one bad batch must not take the server down or leave rows unanswered
                log.exception("generation failed for a batch of %d", len(batch))
                for row in batch:
                    row.fail(500, f"generation failed: {type(e).__name__}: {e}")
            finally:
                self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * (time.monotonic() - start)
                with self._cond:
                    self._running = []
