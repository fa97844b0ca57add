"""The real embedded model behind the server: coherent text, per-request preferences, batch == one by one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_helpers import running

pytestmark = pytest.mark.integration

PROMPT = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def embedded_engine(tmp_path_factory):
    from axial.errors import AxialError
    from axial.mixture import Mixture
    from axial.mixture.testing import write_random_adapter
    from axial.models import load_model
    from axial.serve import Engine

    try:  # an own copy: the mixture is attached in place, and the session's `embedded` is shared
        model, tok = load_model("embedded", dtype="fp32")
    except AxialError as e:
        pytest.skip(f"embedded model unavailable: {e}")
    root = tmp_path_factory.mktemp("embedded_experts")
    dirs = [write_random_adapter(lambda: load_model("embedded", dtype="fp32")[0], root / axis, seed=i,
                                 axis=axis, r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"])
            for i, axis in enumerate(("helpful", "harmless"))]
    return Engine(model, tok, name="embedded", mixture=Mixture.attach(model, dirs))


def test_embedded_model_served_with_preferences(embedded_engine):
    with running(embedded_engine, max_tokens=16, max_batch=4, batch_window_ms=300) as srv:
        c = srv.client()

        def ask(pref):
            extra = {"axial": {"preference": pref}} if pref else None
            reply = c.chat.completions.create(model="embedded", messages=PROMPT, max_tokens=12,
                                              extra_body=extra)
            return reply.choices[0].message.content

        base = ask(None)
        assert "Paris" in base
        streamed = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
            model="embedded", messages=PROMPT, max_tokens=12, stream=True))
        assert streamed == base
        prefs = [None, {"helpful": 1}, {"harmless": 1}, {"helpful": 0.5, "harmless": 0.5}]
        with ThreadPoolExecutor(len(prefs)) as pool:
            together = list(pool.map(ask, prefs))
        assert together == [ask(p) for p in prefs]
        assert len(set(together)) > 1  # the experts change the answer
