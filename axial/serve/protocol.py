"""The OpenAI wire format: request models (unknown fields refused, not ignored), error bodies, responses."""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Messages and params quote the request (a model name, an axis name); these caps keep every error body small
# however large the request that caused it.
MAX_MESSAGE_CHARS = 1000
MAX_PARAM_CHARS = 200


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... [{len(text) - limit} more characters]"


class APIError(Exception):
    """An error answered as OpenAI's {"error": {"message", "type", "param", "code"}} body."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        message = _clip(message, MAX_MESSAGE_CHARS)
        param = _clip(param, MAX_PARAM_CHARS) if param else param
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    @property
    def type(self) -> str:
        # As OpenAI answers: every client error is an invalid_request_error (401 and 404 included, told apart
        # by status and code), rate limits are "requests", and anything on the server's side a server_error.
        if self.status == 429:
            return "requests"
        return "invalid_request_error" if self.status < 500 else "server_error"

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class _Strict(BaseModel):
    # A field the server does not implement is an error, never silently ignored; values are not coerced
    # (max_tokens: true, "3" or 2.0 is an error, not 1, 3 and 2). Integers are still accepted as numbers.
    model_config = ConfigDict(extra="forbid", strict=True)


MAX_AXES = 64
MAX_AXIS_NAME = 64


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class AxialOptions(_Strict):
    """`extra_body={"axial": {...}}`: where this request's mixture weights come from (one of the three)."""

    source: str | None = None  # any axial.sources string, e.g. "pref:helpful=0.7,harmless=0.3"
    # Bounded: a preference names axes, of which a server has a handful, with short names.
    preference: dict[str, float] | None = Field(None, max_length=MAX_AXES)
    # The pre-`source` spellings: "mocae" = the source declared as `mocae`; "preference" = use `preference`.
    routing: Literal["preference", "mocae"] | None = None

    @field_validator("preference")
    @classmethod
    def _short_names(cls, v):
        for name in v or {}:
            if len(name) > MAX_AXIS_NAME:
                raise ValueError(f"an axis name of {len(name)} characters; axis names have at most "
                                 f"{MAX_AXIS_NAME}")
        return v


class StreamOptions(_Strict):
    include_usage: bool = False


class _Common(_Strict):
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    n: int = 1
    user: str | None = None
    # Accepted only at their neutral value, because clients such as LangChain always send them.
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    axial: AxialOptions | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, v):
        if v != 1:
            raise ValueError(f"only 1 is supported (one choice per request), got {v}")
        return v

    @field_validator("presence_penalty", "frequency_penalty")
    @classmethod
    def _neutral(cls, v):
        if v != 0:
            raise ValueError(f"only 0 is supported, got {v}")
        return v

    @field_validator("stop")
    @classmethod
    def _stops(cls, v):
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("at most 4 non-empty stop strings")
        return stops


class ChatRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)


MAX_PROMPTS = 256
MAX_LOGPROBS = 20


class CompletionRequest(_Common):
    """/v1/completions as OpenAI and vLLM define it: one prompt or a list of them (a batch: choices[i].index =
    i), each a string or token ids; `echo` returns the prompt before the completion; `logprobs` = k returns each
    token's log-probability and its top-k alternatives (with `echo`, the prompt's too; max_tokens=0 + echo +
    logprobs scores a prompt without generating)."""

    prompt: str | list[str] | list[list[int]] | list[int]
    max_tokens: int | None = Field(None, ge=0)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)
    seed: int | None = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt_shape(cls, v):
        # Checked here, not by the union, so that a bad prompt gets one message naming the element at fault.
        def token_ids(ids, where):
            if not ids:
                raise ValueError(f"{where} is an empty list of token ids")
            for j, t in enumerate(ids):
                if isinstance(t, bool) or not isinstance(t, int) or t < 0:
                    raise ValueError(f"{where}[{j}] is {t!r}; token ids are whole numbers >= 0")

        if isinstance(v, str):
            return v
        if not isinstance(v, list) or not v:
            raise ValueError("expected a string, a list of token ids, or a non-empty list of strings or of token-id "
                             "lists")
        if len(v) > MAX_PROMPTS and not all(isinstance(x, int) for x in v):
            raise ValueError(f"{len(v)} prompts; at most {MAX_PROMPTS} per request")
        if all(isinstance(x, str) for x in v):
            return v
        if all(isinstance(x, list) for x in v):
            for i, ids in enumerate(v):
                token_ids(ids, f"prompt[{i}]")
            return v
        if all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            token_ids(v, "prompt")
            return v
        raise ValueError("mixes kinds; give one string, a list of token ids, a list of strings or a list of "
                         "token-id lists")

    def prompts(self) -> list[str | list[int]]:
        """The prompts of this request, in choice order."""
        if isinstance(self.prompt, str) or (self.prompt and isinstance(self.prompt[0], int)):
            return [self.prompt]
        return list(self.prompt)


# pydantic puts the union member it tried into an error's location; they are not field names.
_UNION_TAGS = frozenset({"str", "list[str]", "list[TextPart]"})


def parse(model: type[BaseModel], data) -> BaseModel:
    """Validate a JSON body; the first problem becomes a 400 whose `param` is the field's dotted path."""
    if not isinstance(data, dict):
        raise APIError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False, include_input=False)[0]
        param = ".".join(str(x) for x in err["loc"] if x not in _UNION_TAGS) or None
        if err["type"] == "extra_forbidden":
            msg = "unsupported parameter"
        elif err["type"] == "value_error":  # our validators' own words, without pydantic's "Value error, "
            msg = str(err["ctx"]["error"])
        else:
            msg = err["msg"]
        raise APIError(400, f"{param}: {msg}" if param else msg, param=param) from None


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def chat_response(rid: str, model: str, text: str, reason: str, prompt: int, completion: int,
                  axial: dict) -> dict:
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": reason, "logprobs": None}],
            "usage": usage(prompt, completion), "axial": axial}


def completion_response(rid: str, model: str, choices: list[dict], prompt: int, completion: int,
                        axial: dict) -> dict:
    return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": choices, "usage": usage(prompt, completion), "axial": axial}


def chat_chunk(rid: str, model: str, *, delta: dict, reason: str | None = None) -> dict:
    return {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}]}


def completion_chunk(rid: str, model: str, *, text: str, reason: str | None = None) -> dict:
    return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "text": text, "finish_reason": reason, "logprobs": None}]}


def usage_chunk(rid: str, model: str, obj: str, prompt: int, completion: int) -> dict:
    return {"id": rid, "object": obj, "created": int(time.time()), "model": model, "choices": [],
            "usage": usage(prompt, completion)}
