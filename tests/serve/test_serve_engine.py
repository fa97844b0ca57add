"""Engine: rows with different weights, budgets and stops share one generate call and match solo runs."""

from __future__ import annotations

from axial.mixture import Static
from axial.serve import GenRequest


class Sink:
    """A scheduled row as the engine sees it, recording what it is told."""

    def __init__(self, request: GenRequest, cancel_after: int | None = None):
        self.request = request
        self.pieces: list[str] = []
        self.reason: str | None = None
        self.tokens = 0
        self.cancel_after = cancel_after

    @property
    def cancelled(self) -> bool:
        return self.cancel_after is not None and self.tokens >= self.cancel_after

    def emit(self, text: str, tokens: int) -> None:
        assert self.reason is None, "text after the row ended"
        self.pieces.append(text)
        self.tokens = tokens

    def finish(self, reason: str, tokens: int) -> None:
        assert self.reason is None, "row ended twice"
        self.reason, self.tokens = reason, tokens

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def _request(engine, prompt: str, **kw) -> GenRequest:
    return GenRequest(prompt_ids=tuple(engine.encode_chat([{"role": "user", "content": prompt}])), **kw)


def test_mixed_batch_matches_one_by_one(engine):
    reqs = [_request(engine, "hi", max_tokens=12, source=Static([1.0, 0.0, 0.0])),
            _request(engine, "a much longer prompt than the others", max_tokens=7, source=Static([0.0, 1.0, 0.0])),
            _request(engine, "base model please", max_tokens=12),
            _request(engine, "hi", max_tokens=12, source=Static([0.2, 0.3, 0.5]))]
    together = [Sink(r) for r in reqs]
    engine.run(together)
    alone = []
    for r in reqs:
        sink = Sink(r)
        engine.run([sink])
        alone.append(sink)
    assert [(s.text, s.reason, s.tokens) for s in together] == [(s.text, s.reason, s.tokens) for s in alone]
    assert [s.tokens for s in together] == [12, 7, 12, 12]
    assert engine.mixture.router is None
    # The experts matter: same prompt, different weights, different text (else the test could not fail).
    assert together[0].text != together[3].text
    assert engine.mixture.current_weights is None  # nothing leaks into the next batch


def test_stop_string_ends_row_without_leaking_it(engine):
    free = Sink(_request(engine, "hi", max_tokens=20, source=Static([1.0, 0.0, 0.0])))
    engine.run([free])
    stop = free.text[5:8]
    assert len(stop) == 3 and free.text.find(stop) == 5
    stopped = Sink(_request(engine, "hi", max_tokens=20, source=Static([1.0, 0.0, 0.0]), stop=(stop,)))
    engine.run([stopped])
    assert stopped.reason == "stop"
    assert stopped.text == free.text[:5]


def test_cancelled_row_stops_while_others_continue(engine):
    keep = Sink(_request(engine, "hi", max_tokens=30))
    gone = Sink(_request(engine, "hi", max_tokens=30), cancel_after=3)
    engine.run([gone, keep])
    assert gone.reason == "cancelled" and gone.tokens == 3
    assert keep.reason == "length" and keep.tokens == 30


def test_every_row_cancelled_ends_generate_early(engine):
    rows = [Sink(_request(engine, "hi", max_tokens=60), cancel_after=2) for _ in range(2)]
    engine.run(rows)
    assert [(r.reason, r.tokens) for r in rows] == [("cancelled", 2)] * 2


def test_routed_and_static_rows_share_a_batch(engine):
    """A MoCaE-routed request and static ones in one batch answer as each would alone."""
    routed = engine.sources["mocae"]
    reqs = [_request(engine, "hi", max_tokens=10, source=routed),
            _request(engine, "another prompt", max_tokens=10, source=Static([0.0, 0.0, 1.0])),
            _request(engine, "hi", max_tokens=10)]
    together = [Sink(r) for r in reqs]
    engine.run(together)
    alone = []
    for r in reqs:
        sink = Sink(r)
        engine.run([sink])
        alone.append(sink)
    assert [(s.text, s.tokens) for s in together] == [(s.text, s.tokens) for s in alone]
    assert engine.mixture.router is None and engine.mixture.current_weights is None
