"""Under load: batching, the bounded queue (429), cancellation, graceful shutdown, failures — nothing lost."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from serve_helpers import running, slow_steps

HI = [{"role": "user", "content": "hi"}]


def _chat(client, **kw):
    kw.setdefault("model", "tiny")
    kw.setdefault("messages", HI)
    kw.setdefault("max_tokens", 8)
    return client.chat.completions.create(**kw)


def _wait(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def _metric(srv, name: str) -> float:
    for line in httpx.get(srv.url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_concurrent_mixed_preferences_share_batches_and_match_solo(engine):
    prefs = [{"helpful": 1}, {"harmless": 1}, {"honest": 1}, {"helpful": 1, "harmless": 1}, None, None]
    prefs = prefs * 2
    with running(engine, max_batch=8, batch_window_ms=200) as srv:
        c = srv.client()

        def ask(pref):
            extra = {"axial": {"preference": pref}} if pref else None
            return _chat(c, extra_body=extra).choices[0].message.content

        with ThreadPoolExecutor(len(prefs)) as pool:
            together = list(pool.map(ask, prefs))
        batches = _metric(srv, "axial_batch_size_count")
        assert batches < len(prefs)  # several requests per forward pass
        assert _metric(srv, "axial_batch_size_sum") == len(prefs)
        solo = [ask(p) for p in prefs]
    assert together == solo


def test_full_queue_answers_429_with_retry_after(engine):
    with running(engine, max_batch=1, max_queue=1, batch_window_ms=0) as srv, slow_steps(engine, 0.05):
        c = srv.client()
        with ThreadPoolExecutor(2) as pool:
            running_one = pool.submit(_chat, c, max_tokens=20)
            _wait(lambda: srv.state.scheduler._running)
            queued = pool.submit(_chat, c)
            _wait(lambda: len(srv.state.scheduler._queue) == 1)
            with pytest.raises(openai.RateLimitError) as e:
                _chat(c)
            assert int(e.value.response.headers["Retry-After"]) >= 1
            assert e.value.body["code"] == "queue_full"
            # The two admitted requests are answered in full.
            assert running_one.result().usage.completion_tokens == 20
            assert queued.result().usage.completion_tokens == 8


def test_client_disconnect_frees_the_slot(engine):
    with running(engine, max_batch=1, max_queue=1, batch_window_ms=0, max_tokens=450) as srv, \
            slow_steps(engine, 0.05):
        c = srv.client()
        stream = _chat(c, max_tokens=400, stream=True)
        next(iter(stream))  # the row is generating
        _wait(lambda: srv.state.scheduler._running)
        stream.close()  # client goes away after a few tokens
        start = time.monotonic()
        reply = _chat(c, max_tokens=4)
        # Had the 400-token row run on, this would wait ~20 s for it.
        assert time.monotonic() - start < 8.0
        assert reply.usage.completion_tokens == 4
        assert _metric(srv, 'axial_rows_finished_total{reason="cancelled"}') == 1
        assert _metric(srv, 'axial_tokens_total{kind="completion"}') < 100


def test_queued_request_cancelled_by_disconnect_leaves_the_queue(engine):
    with running(engine, max_batch=1, max_queue=1, batch_window_ms=0) as srv, slow_steps(engine, 0.05):
        c = srv.client()
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(_chat, c, max_tokens=20)
            _wait(lambda: srv.state.scheduler._running)
            with httpx.Client(timeout=0.3) as raw, pytest.raises(httpx.ReadTimeout):
                raw.post(srv.url + "/v1/chat/completions",
                         json={"model": "tiny", "messages": HI, "max_tokens": 8})
            _wait(lambda: not srv.state.scheduler._queue)
            assert first.result().usage.completion_tokens == 20


def test_sigterm_finishes_in_flight_and_refuses_new(engine):
    with running(engine, max_batch=1, max_queue=4, batch_window_ms=0) as srv, slow_steps(engine, 0.03):
        c = srv.client()
        with ThreadPoolExecutor(2) as pool:
            a = pool.submit(_chat, c, max_tokens=30)
            b = pool.submit(_chat, c, max_tokens=10, stream=False)
            _wait(lambda: srv.state.scheduler._running and srv.state.scheduler._queue)
            srv.sigterm()
            with pytest.raises((openai.APIConnectionError, openai.InternalServerError)):
                _chat(c)  # new work: refused (connection closed) or 503
            assert a.result().usage.completion_tokens == 30
            assert b.result().usage.completion_tokens == 10
        srv.thread.join(10)
        assert not srv.thread.is_alive()


def test_shutdown_deadline_answers_unfinished_with_503(engine):
    with running(engine, max_batch=1, max_queue=4, batch_window_ms=0, drain_timeout_s=0.3) as srv, \
            slow_steps(engine, 0.05):
        c = srv.client()
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(_chat, c, max_tokens=60)
            _wait(lambda: srv.state.scheduler._running)
            srv.sigterm()
            with pytest.raises(openai.InternalServerError) as e:
                slow.result()
        assert e.value.status_code == 503 and "shut down" in e.value.body["message"]
        srv.thread.join(10)
        assert not srv.thread.is_alive()


def test_failed_batch_answers_every_row_and_server_continues(engine):
    calls = {"n": 0}
    real_generate = engine.model.generate

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return real_generate(*args, **kwargs)

    with running(engine, max_batch=4, batch_window_ms=300) as srv:
        c = srv.client()
        engine.model.generate = flaky
        try:
            with ThreadPoolExecutor(3) as pool:
                results = list(pool.map(lambda _: _try(c), range(3)))
        finally:
            del engine.model.generate
        assert results == [500, 500, 500]
        assert _chat(c).usage.completion_tokens == 8


def _try(client) -> int:
    try:
        _chat(client)
        return 200
    except openai.APIStatusError as e:
        assert "boom" in e.body["message"]
        return e.status_code


def test_streams_and_plain_requests_mix_in_one_batch(engine):
    with running(engine, max_batch=4, batch_window_ms=300) as srv:
        c = srv.client()
        out = {}

        def stream():
            out["stream"] = "".join(ch.choices[0].delta.content or ""
                                    for ch in _chat(c, stream=True, max_tokens=12))

        t = threading.Thread(target=stream)
        t.start()
        out["plain"] = _chat(c, max_tokens=12).choices[0].message.content
        t.join()
        assert out["stream"] == out["plain"]
        assert _metric(srv, "axial_batch_size_count") == 1
