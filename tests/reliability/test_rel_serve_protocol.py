"""Hostile request bodies against a real `axial serve` process (issue 15, items 2 and 3).

Every error must be OpenAI-shaped ({"error": {message, type, param, code}}) with OpenAI's status and type,
name the field at the start of its message, stay small, and leave the keep-alive connection usable.
"""

from __future__ import annotations

import json

import pytest
from rel_server import connect, request

HI = [{"role": "user", "content": "hi"}]
MAX_ERROR_BYTES = 4096


@pytest.fixture(scope="module")
def port(rel_server):
    return rel_server


def _chat(**change) -> dict:
    return {"model": "tiny", "messages": HI, "max_tokens": 2, **change}


def _error(status: int, headers: dict, body: bytes) -> dict:
    assert headers.get("content-type", "").startswith("application/json"), (status, body[:300])
    assert len(body) <= MAX_ERROR_BYTES, f"{len(body)}-byte error body"
    parsed = json.loads(body)
    assert "error" in parsed, f"HTTP {status}, accepted: {body[:80]!r}"
    error = parsed["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def _exchange_then_health(port: int, method: str, path: str, body) -> tuple[int, dict, bytes]:
    """One request, then GET /health on the SAME connection: an error must not cost the connection."""
    with connect(port) as s:
        status, headers, data = request(s, method, path, body)
        health = request(s, "GET", "/health")
        assert health[0] == 200, "the keep-alive connection did not survive the error"
    return status, headers, data


@pytest.mark.parametrize("body", [
    b'{"model": "tiny", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "axial": {"preference": '
    + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}}",
], ids=["nested-lists", "nested-objects"])
def test_deeply_nested_json_is_400_and_the_connection_survives(port, body, observe):
    status, headers, data = _exchange_then_health(port, "POST", "/v1/chat/completions", body)
    error = _error(status, headers, data)
    observe(f"{status} {error['type']} `{error['message']}`; /health on the same connection: 200")
    assert status == 400 and error["type"] == "invalid_request_error", (status, error)
    assert "nested" in error["message"]


def test_oversized_integer_literal_is_400(port, observe):
    body = b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": ' + b"9" * 5000 + b"}"
    status, headers, data = _exchange_then_health(port, "POST", "/v1/chat/completions", body)
    error = _error(status, headers, data)
    observe(f"{status} {error['type']} `{error['message'][:70]}...`; connection kept")
    assert status == 400 and error["type"] == "invalid_request_error"


@pytest.mark.parametrize("change, param", [
    ({"max_tokens": True}, "max_tokens"),
    ({"max_tokens": "3"}, "max_tokens"),
    ({"max_tokens": 2.0}, "max_tokens"),
    ({"max_completion_tokens": True}, "max_completion_tokens"),
    ({"n": True}, "n"),
    ({"n": 1.0}, "n"),
    ({"temperature": True}, "temperature"),
    ({"temperature": "0.5"}, "temperature"),
    ({"top_p": "1"}, "top_p"),
    ({"stream": "true"}, "stream"),
    ({"stream": 1}, "stream"),
    ({"presence_penalty": False}, "presence_penalty"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"axial": {"preference": {"helpful": True}}}, "axial.preference.helpful"),
    ({"axial": {"preference": {"helpful": "1"}}}, "axial.preference.helpful"),
    ({"axial": {"preference": {"helpful": 1e308, "harmless": 1e308}}}, "axial.preference"),
    ({"axial": {"preference": {"": 1}}}, "axial.preference"),
    ({"axial": {"preference": {f"axis{i}": 1 for i in range(40_000)}}}, "axial.preference"),
    ({"axial": {"source": "pref:helpful=1e308,harmless=1e308"}}, "axial.source"),
    ({"axial": {"source": "pref:" + "helpful=1," * 20_000}}, "axial.source"),
    ({"axial": {"source": 5}}, "axial.source"),
], ids=["max_tokens-true", "max_tokens-str", "max_tokens-float", "max_completion_tokens-true", "n-true", "n-float",
        "temperature-true", "temperature-str", "top_p-str", "stream-str", "stream-int", "presence_penalty-false",
        "presence_penalty-0.5", "preference-true", "preference-str", "preference-1e308", "preference-empty-name",
        "preference-40k-keys", "source-1e308", "source-200k-chars", "source-int"])
def test_wrong_types_and_ranges_are_400_naming_the_field(port, change, param, observe):
    status, headers, data = _exchange_then_health(port, "POST", "/v1/chat/completions", _chat(**change))
    error = _error(status, headers, data)
    message = error["message"] if len(error["message"]) < 90 else error["message"][:90] + "..."
    observe(f"{status}, param `{error['param']}`, `{message}` ({len(data)} B)")
    assert status == 400 and error["type"] == "invalid_request_error", (status, error)
    assert error["param"] == param, error
    assert error["message"].startswith(f"{param}: ") and len(error["message"]) > len(param) + 2, error
    assert "  " not in error["message"], f"a blank where a name or value belongs: {error['message']}"


def test_huge_axis_name_gives_a_bounded_error(port, observe):
    change = {"axial": {"preference": {"x" * 300_000: 1}}}
    status, headers, data = _exchange_then_health(port, "POST", "/v1/chat/completions", _chat(**change))
    error = _error(status, headers, data)
    observe(f"{status}, param `{error['param']}`, `{error['message']}` ({len(data)} B)")
    assert status == 400 and error["param"] == "axial.preference" and "300000 characters" in error["message"]


def test_unknown_model_is_404_like_openai(port, observe):
    status, headers, data = _exchange_then_health(port, "POST", "/v1/chat/completions", _chat(model="gpt-4"))
    error = _error(status, headers, data)
    observe(f"{status} {error['type']}, code {error['code']}, param {error['param']}")
    assert status == 404, (status, error)
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "model_not_found", "model")


def test_huge_model_name_gives_a_bounded_error(port, observe):
    status, headers, data = _exchange_then_health(port, "POST", "/v1/chat/completions",
                                                  _chat(model="m" * 500_000))
    observe(f"{status}, {len(data)}-byte error body")
    assert status == 404 and _error(status, headers, data)["param"] == "model"


def test_wrong_method_is_405_invalid_request(port, observe):
    status, headers, data = _exchange_then_health(port, "GET", "/v1/chat/completions", None)
    error = _error(status, headers, data)
    observe(f"{status} {error['type']}, Allow: {headers.get('allow')}, `{error['message']}`")
    assert status == 405 and error["type"] == "invalid_request_error", (status, error)
    assert headers.get("allow") == "POST" and "GET" in error["message"]


def test_unknown_path_is_404_invalid_request(port, observe):
    status, headers, data = _exchange_then_health(port, "GET", "/v1/engines", None)
    error = _error(status, headers, data)
    observe(f"{status} {error['type']} `{error['message']}`")
    assert status == 404 and error["type"] == "invalid_request_error", (status, error)


def test_a_valid_request_still_works(port, observe):
    with connect(port) as s:
        status, _, data = request(s, "POST", "/v1/chat/completions", _chat())
    observe(f"{status}, {json.loads(data)['usage']['completion_tokens']} tokens")
    assert status == 200 and json.loads(data)["usage"]["completion_tokens"] == 2
