"""The OpenAI client, unchanged, against the server on loopback: endpoints, preferences, presets, errors."""

from __future__ import annotations

import httpx
import openai
import pytest
from serve_helpers import running

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def server(engine):
    with running(engine) as srv:
        yield srv


def _chat(client, **kw):
    kw.setdefault("model", "tiny")
    kw.setdefault("messages", HI)
    kw.setdefault("max_tokens", 16)
    return client.chat.completions.create(**kw)


def test_chat_and_completion_plain_and_streamed(server):
    c = server.client()
    plain = _chat(c)
    assert plain.choices[0].finish_reason == "length" and plain.usage.completion_tokens == 16
    assert plain.usage.prompt_tokens > 0 and plain.choices[0].message.role == "assistant"
    chunks = list(_chat(c, stream=True, stream_options={"include_usage": True}))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == \
        plain.choices[0].message.content
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 16

    comp = c.completions.create(model="tiny", prompt="The cat", max_tokens=8)
    assert comp.choices[0].finish_reason == "length" and comp.usage.completion_tokens == 8
    streamed = "".join(ch.choices[0].text for ch in
                       c.completions.create(model="tiny", prompt="The cat", max_tokens=8, stream=True))
    assert streamed == comp.choices[0].text


def test_preference_and_presets_select_the_mixture(server):
    c = server.client()

    def text(**kw):
        return _chat(c, **kw).choices[0].message.content

    helpful = text(extra_body={"axial": {"preference": {"helpful": 1}}})
    harmless = text(extra_body={"axial": {"preference": {"harmless": 1}}})
    assert helpful != harmless != text()
    assert text(model="tiny:helpful") == helpful
    # Un-normalised preferences mean the same as normalised ones.
    assert text(extra_body={"axial": {"preference": {"helpful": 3, "harmless": 1}}}) == \
        text(extra_body={"axial": {"preference": {"helpful": 0.75, "harmless": 0.25}}})
    reply = _chat(c, extra_body={"axial": {"preference": {"helpful": 3, "harmless": 1}}})
    assert reply.model_extra["axial"]["weights"] == {"helpful": 0.75, "harmless": 0.25, "honest": 0.0}
    mocae = _chat(c, extra_body={"axial": {"routing": "mocae"}})
    assert mocae.model_extra["axial"] == {"source": "tiny:mocae", "routing": "routed", "method": "routed"}
    # The fixture's router is zero-initialised: softmax(0) = equal weights, i.e. the `balanced` preset.
    assert mocae.choices[0].message.content == text(model="tiny:balanced") != text()
    assert text(model="tiny:mocae") == mocae.choices[0].message.content


def test_models_lists_base_and_presets(server):
    ids = {m.id for m in server.client().models.list().data}
    assert ids == {"tiny", "tiny:helpful", "tiny:harmless", "tiny:honest", "tiny:balanced", "tiny:safe",
                   "tiny:mocae"}


@pytest.mark.parametrize("change, param", [
    ({"extra_body": {"axial": {"preference": {"evil": 1}}}}, "axial.preference.evil"),
    ({"extra_body": {"axial": {"preference": {"helpful": -1}}}}, "axial.preference.helpful"),
    ({"extra_body": {"axial": {"preference": {"helpful": 0}}}}, "axial.preference"),
    ({"extra_body": {"axial": {"preference": {"helpful": "much"}}}}, "axial.preference.helpful"),
    ({"extra_body": {"axial": {"routing": "mocae", "preference": {"helpful": 1}}}}, "axial.routing"),
    ({"model": "tiny:safe", "extra_body": {"axial": {"preference": {"helpful": 1}}}}, "axial"),
    ({"max_tokens": 65}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "x" * 600}]}, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ({"temperature": 3}, "temperature"),
    ({"n": 2}, "n"),
    ({"extra_body": {"logit_bias": {"1": 5}}}, "logit_bias"),
])
def test_bad_requests_are_400_naming_the_field(server, change, param):
    with pytest.raises(openai.BadRequestError) as e:
        _chat(server.client(), **change)
    assert e.value.body["param"] == param
    assert e.value.body["type"] == "invalid_request_error"
    assert param.split(".")[-1] in e.value.body["message"]


def test_unknown_model_is_404_as_openai_answers(server):
    with pytest.raises(openai.NotFoundError) as e:
        _chat(server.client(), model="gpt-4")
    assert (e.value.body["param"], e.value.body["code"]) == ("model", "model_not_found")
    assert e.value.body["type"] == "invalid_request_error"


def test_non_finite_preference_is_400(server):
    body = b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], ' \
           b'"axial": {"preference": {"helpful": NaN}}}'
    r = httpx.post(server.url + "/v1/chat/completions", content=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == "axial.preference.helpful"


def test_prompt_plus_budget_over_context_is_400(engine):
    with running(engine, max_tokens=500) as srv:
        with pytest.raises(openai.BadRequestError) as e:
            _chat(srv.client(), messages=[{"role": "user", "content": "x" * 400}], max_tokens=200)
    assert e.value.body["param"] == "max_tokens" and e.value.body["code"] == "context_length_exceeded"


def test_body_size_limit(server):
    r = httpx.post(server.url + "/v1/chat/completions", content=b"x" * 2_000_000)
    assert r.status_code == 413
    chunked = httpx.post(server.url + "/v1/chat/completions", content=iter([b"x" * 600_000] * 3))
    assert chunked.status_code == 413


def test_api_key(engine, caplog):
    key = "sk-test-0123456789"
    with running(engine, api_keys=[key]) as srv:
        with pytest.raises(openai.AuthenticationError) as e:
            _chat(srv.client("wrong"))
        assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
        assert httpx.get(srv.url + "/v1/models").status_code == 401
        assert httpx.get(srv.url + "/metrics").status_code == 401
        assert httpx.get(srv.url + "/health").status_code == 200
        assert _chat(srv.client(key)).choices[0].finish_reason == "length"
    assert key not in caplog.text


def test_metrics(server):
    _chat(server.client(), max_tokens=5)
    text = httpx.get(server.url + "/metrics").text
    for name in ("axial_requests_total", "axial_request_latency_seconds_bucket", "axial_batch_size_bucket",
                 "axial_queue_depth", "axial_tokens_total", "axial_time_to_first_token_seconds_bucket"):
        assert name in text
    assert 'axial_requests_total{code="200",endpoint="/v1/chat/completions"}' in text
    assert 'axial_tokens_total{kind="completion"}' in text


def test_preference_the_experts_cannot_reach_is_400(expert_dirs):
    from axial.mixture import Mixture
    from axial.serve import Engine
    from axial.testing import tiny_llama

    model, tok = tiny_llama()
    two = Engine(model, tok, name="tiny", mixture=Mixture.attach(model, expert_dirs[:2]))  # no honest expert
    bare_model, bare_tok = tiny_llama()
    with running(two) as srv, running(Engine(bare_model, bare_tok, name="tiny")) as bare:
        assert {m.id for m in srv.client().models.list().data} == {"tiny", "tiny:helpful", "tiny:harmless",
                                                                   "tiny:balanced", "tiny:safe"}
        with pytest.raises(openai.BadRequestError) as e:
            _chat(srv.client(), extra_body={"axial": {"preference": {"honest": 1}}})
        assert e.value.body["param"] == "axial.preference" and "outside" in e.value.body["message"]
        assert {m.id for m in bare.client().models.list().data} == {"tiny"}
        with pytest.raises(openai.BadRequestError) as e:
            _chat(bare.client(), extra_body={"axial": {"preference": {"helpful": 1}}})
        assert "no experts" in e.value.body["message"]


def test_sampling_and_stop_strings(server):
    c = server.client()
    sampled = _chat(c, temperature=0.8, top_p=0.9, max_tokens=12)
    assert sampled.usage.completion_tokens == 12 and sampled.choices[0].finish_reason == "length"
    free = _chat(c, model="tiny:helpful").choices[0].message.content
    stop = free[4:7]
    assert free.find(stop) == 4
    cut = _chat(c, model="tiny:helpful", stop=[stop])
    assert cut.choices[0].message.content == free[:4] and cut.choices[0].finish_reason == "stop"


def test_unexpected_error_is_an_openai_shaped_500(server, engine, monkeypatch):
    def broken(_messages):
        raise RuntimeError("tokenizer exploded")

    monkeypatch.setattr(engine, "encode_chat", broken)
    with pytest.raises(openai.InternalServerError) as e:
        _chat(server.client())
    assert e.value.status_code == 500 and e.value.body["type"] == "server_error"
    assert "exploded" not in e.value.body["message"]  # internals stay in the server log
