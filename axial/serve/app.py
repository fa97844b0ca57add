"""The FastAPI app: OpenAI-compatible endpoints in front of the batching scheduler.

    POST /v1/chat/completions, /v1/completions   (stream=True: server-sent events)
    GET  /v1/models, /health, /metrics
    GET  /tokenizer_info, POST /tokenize, /detokenize   (vLLM's, for lm-eval's remote tokenizer)

Per request the mixture weights come from a weight source (axial.sources): named by the model
(`embedded` = the base model, `embedded:<name>` = a declared source or default preset) or given in the body
(the OpenAI client's `extra_body`) as `"axial": {"source": "pref:helpful=0.7,harmless=0.3"}` (any source
string; sources that read files only if declared at start-up) or `"axial": {"preference": {...}}`. Requests
with different sources, static or routed, share batches (one source per row).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from axial.axes import axis_names, load_axes
from axial.errors import AxialError
from axial.mixture.resolved import Routed, WeightSource
from axial.serve import protocol as p
from axial.serve.config import ServeConfig
from axial.serve.engine import Engine, GenRequest
from axial.serve.metrics import Metrics
from axial.serve.scheduler import Draining, QueueFull, Row, Scheduler
from axial.sources import Base, Pref, Source, parse_source

log = logging.getLogger("axial.serve")


def default_presets(expert_names: Sequence[str], axes: Sequence[str], hoe: str | None = None) -> dict[str, str]:
    """One preset per axis expert, `balanced` (equal weights) and, with a harmless expert, `safe`: plain linear
    weight mixing of the axis experts (w = λ). With a HoE router-expert set (`axial train-hoe`), `hoe-balanced`
    and `hoe-safe` serve the same preferences through HoE preference routing."""
    names = [n for n in expert_names if n in axes]
    presets = {n: f"pref:{n}=1" for n in names}
    mixes: dict[str, str] = {}
    if len(names) > 1:
        mixes["balanced"] = ",".join(f"{n}=1" for n in names)
        if "harmless" in names:
            # Mostly harmless, the rest shared: refuses harm but still answers ordinary requests.
            rest = [n for n in names if n != "harmless"]
            mixes["safe"] = "harmless=0.6," + ",".join(f"{n}={0.4 / len(rest):.10g}" for n in rest)
    presets.update({k: f"pref:{v}" for k, v in mixes.items()})
    if hoe:
        presets.update({f"hoe-{k}": f"hoe:{v}?set={hoe}" for k, v in mixes.items()})
    return presets


def method(source: WeightSource, resolved) -> str:
    """How a source chooses its weights, in words (replies and /v1/models carry it)."""
    from axial.sources import HoE, MoCaE

    if isinstance(source, HoE):
        return "HoE preference routing (router experts)" if isinstance(resolved, Routed) else \
            "HoE preference routing (fixed-weight anchors at this preference)"
    if isinstance(source, MoCaE):
        return "MoCaE router"
    if isinstance(resolved, Routed):
        return "routed"
    if resolved.weights is None:
        return "base model"
    if isinstance(source, Pref):
        return "linear weight mixing of the experts (w = λ over fixed-weight anchors)"
    return "fixed expert weights"


def describe(name: str, source: WeightSource, resolved, expert_names: Sequence[str]) -> dict:
    """What a reply says about the weights it was generated with (`name`: how to call a source that is not
    a parseable one, e.g. a router object handed to the Engine)."""
    spec = source.spec() if isinstance(source, Source) else name
    if isinstance(resolved, Routed):
        return {"source": spec, "routing": "routed", "method": method(source, resolved)}
    if resolved.weights is None:
        return {"source": spec, "routing": "base", "method": method(source, resolved)}
    import torch

    w = torch.as_tensor(resolved.weights, dtype=torch.float32).tolist()
    # Rounded: the weights come out of float32 solves, and 0.6000000238 helps nobody reading a reply.
    return {"source": spec, "routing": "static", "method": method(source, resolved),
            "weights": {n: round(float(x), 6) for n, x in zip(expert_names, w, strict=True)}}


class ServerState:
    def __init__(self, engine: Engine, config: ServeConfig, api_keys: Sequence[str]):
        self.engine, self.config = engine, config
        self.api_keys = [k.encode() for k in api_keys if k]
        self.metrics = Metrics(config.max_batch)
        self.scheduler = Scheduler(engine, self.metrics, max_batch=config.max_batch, max_queue=config.max_queue,
                                   batch_window_s=config.batch_window_ms / 1000)
        self.axes = axis_names(load_axes(config.axes))
        self.base_name = config.name or engine.name
        # model id -> source. Defaults first, so a declared source of the same name replaces a default.
        named: dict[str, WeightSource] = {}
        if engine.mixture is not None:
            for preset, spec in default_presets(engine.expert_names, self.axes, config.hoe or None).items():
                named[preset] = parse_source(spec, axes=self.axes)
        named.update(engine.sources)
        self.models: dict[str, WeightSource] = {self.base_name: Base()}
        for preset, source in named.items():
            try:
                self.resolve(source, f"ServeConfig.sources.{preset}")
            except p.APIError as e:
                raise AxialError(e.message) from None
            self.models[f"{self.base_name}:{preset}"] = source
        # Sources that read files may be named by a request only if the operator declared them.
        self.declared = {s.spec(): s for s in named.values() if isinstance(s, Source)}

    def resolve(self, source: WeightSource, param: str):
        """The source's Static/Routed form for this server's experts; a 400 naming `param` if it has none."""
        if self.engine.mixture is None:
            if isinstance(source, Base):
                return source.resolve(None)
            raise p.APIError(400, f"{param}: this server has no experts loaded (start it with --experts)",
                             param=param)
        try:
            return self.engine.mixture.resolve(source)
        except AxialError as e:
            field = re.search(r"field '([^']+)'", str(e))
            where = f"{param}.{field[1]}" if field and param.endswith("preference") else param
            raise p.APIError(400, f"{where}: {e}", param=where) from None

    def begin_shutdown(self) -> None:
        self.scheduler.drain(self.config.drain_timeout_s)

    def check_key(self, request: Request) -> None:
        if not self.api_keys:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token_b = token.strip().encode()
        # compare_digest against every key (no early exit on a match) keeps the timing independent of which.
        ok = [hmac.compare_digest(token_b, k) for k in self.api_keys]
        if scheme.lower() != "bearer" or not any(ok):
            raise p.APIError(401, "missing or invalid API key; send 'Authorization: Bearer <key>'",
                             code="invalid_api_key")

    def route(self, req: p.ChatRequest | p.CompletionRequest) -> tuple[WeightSource, object]:
        """(source, its resolved form) for a request: from the model name, or from the body's `axial` options."""
        if req.model not in self.models:
            raise p.APIError(404, f"model: unknown model '{req.model}'; served: {sorted(self.models)}",
                             param="model", code="model_not_found")
        opts = req.axial
        if opts is not None and opts.routing == "preference":
            if opts.preference is None:
                raise p.APIError(400, "axial.preference: routing 'preference' needs a preference",
                                 param="axial.preference")
            opts = opts.model_copy(update={"routing": None})
        given = [k for k in ("source", "preference", "routing") if opts is not None and getattr(opts, k) is not None]
        if not given:
            source = self.models[req.model]
            return source, self.resolve(source, "model")
        if req.model != self.base_name:
            raise p.APIError(400, f"axial: model '{req.model}' already fixes the weights; send options in "
                             f"'axial' only with the base model '{self.base_name}'", param="axial")
        if len(given) > 1:
            raise p.APIError(400, f"axial.{given[1]}: give one of axial.source, axial.preference or axial.routing",
                             param=f"axial.{given[1]}")
        if opts.routing is not None:  # the pre-`source` spelling: "mocae" = the source declared as `mocae`
            source = self.models.get(f"{self.base_name}:mocae") if opts.routing == "mocae" else None
            if source is None:
                raise p.APIError(400, "axial.routing: this server has no MoCaE router (start it with "
                                 "--source mocae=mocae:DIR); prefer axial.source", param="axial.routing")
            return source, self.resolve(source, "axial.routing")
        if opts.preference is not None:
            try:
                source = Pref.of(opts.preference, axes=self.axes)
            except AxialError as e:
                field = re.search(r"field '([^']+)'", str(e))
                where = f"axial.preference.{field[1]}" if field else "axial.preference"
                raise p.APIError(400, f"{where}: {e}", param=where) from None
            return source, self.resolve(source, "axial.preference")
        try:
            source = parse_source(opts.source, axes=self.axes)
        except AxialError as e:
            raise p.APIError(400, f"axial.source: {e}", param="axial.source") from None
        if source.reads_files and source.spec() not in self.declared:
            raise p.APIError(400, f"axial.source: '{source}' reads files on the server; only sources declared at "
                             f"start-up may (declared: {sorted(self.declared)})", param="axial.source")
        return source, self.resolve(self.declared.get(source.spec(), source), "axial.source")

    async def prepare(self, req: p.ChatRequest) -> tuple[GenRequest, dict]:
        source, resolved = self.route(req)
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                    for m in req.messages]
        ids = await asyncio.to_thread(self.engine.encode_chat, messages)
        max_tokens, budget_param = req.max_completion_tokens or req.max_tokens, (
            "max_completion_tokens" if req.max_completion_tokens else "max_tokens")
        gen = self.admit(req, ids, source, prompt_param="messages", max_tokens=max_tokens,
                         budget_param=budget_param)
        return gen, self.describe_source(req, source, resolved)

    def admit(self, req: p.ChatRequest | p.CompletionRequest, ids: Sequence[int], source: WeightSource, *,
              prompt_param: str, max_tokens: int | None, budget_param: str, **extra) -> GenRequest:
        """A GenRequest for prompt `ids`, once the prompt and the token budget fit this server (else a 400)."""
        context = self.engine.context_length
        if not ids:
            raise p.APIError(400, f"{prompt_param}: the prompt is empty", param=prompt_param)
        # A prompt may fill the context only when nothing is generated after it (max_tokens=0: scoring).
        if len(ids) > context or (len(ids) == context and max_tokens != 0):
            raise p.APIError(400, f"{prompt_param}: the prompt is {len(ids)} tokens; this model's context is "
                             f"{context} tokens", param=prompt_param, code="context_length_exceeded")
        room = context - len(ids)
        if max_tokens is None:
            max_tokens = min(self.config.max_tokens, room)
        elif max_tokens > self.config.max_tokens:
            raise p.APIError(400, f"{budget_param}: {max_tokens} is more than this server allows "
                             f"({self.config.max_tokens})", param=budget_param)
        elif max_tokens > room:
            raise p.APIError(400, f"{budget_param}: {len(ids)} prompt tokens + {max_tokens} new tokens exceed "
                             f"the context of {context}", param=budget_param, code="context_length_exceeded")
        temperature = 0.0 if req.temperature is None else req.temperature
        return GenRequest(prompt_ids=tuple(ids), max_tokens=max_tokens, source=source, temperature=temperature,
                          top_p=1.0 if req.top_p is None else req.top_p, stop=tuple(req.stop or ()), **extra)

    def describe_source(self, req, source: WeightSource, resolved) -> dict:
        name = next((m for m, s in self.models.items() if s is source), req.model)
        return describe(name, source, resolved, self.engine.expert_names)

    def submit(self, gen: GenRequest) -> Row:
        try:
            return self.scheduler.submit(gen, asyncio.get_running_loop())
        except QueueFull as e:
            self.metrics.rejected.labels("queue_full").inc()
            raise p.APIError(429, f"the server is busy (queue of {self.config.max_queue} full); retry after "
                             f"{e.retry_after}s", code="queue_full",
                             headers={"Retry-After": str(e.retry_after)}) from None
        except Draining:
            self.metrics.rejected.labels("shutting_down").inc()
            raise p.APIError(503, "the server is shutting down", code="shutting_down") from None


def create_app(engine: Engine, config: ServeConfig, api_keys: Sequence[str] = ()) -> FastAPI:
    """The ASGI app for `engine`. Its scheduler thread starts and stops with the app's lifespan."""
    state = ServerState(engine, config, api_keys)

    @asynccontextmanager
    async def lifespan(_app):
        state.scheduler.start()
        try:
            yield
        finally:
            state.scheduler.drain(config.drain_timeout_s)
            await asyncio.to_thread(state.scheduler.close, config.drain_timeout_s + 5)

    app = FastAPI(title="axial", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.axial = state
    app.add_middleware(_BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(_Observe, metrics=state.metrics)  # added last = outermost: sees the 413s too

    def check_key(request: Request) -> None:
        state.check_key(request)

    auth = [Depends(check_key)]

    @app.exception_handler(p.APIError)
    async def _api_error(_request, e: p.APIError):
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        # Routing errors (no such path, wrong method), worded as OpenAI words them.
        headers = dict(e.headers or {})
        if e.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; use {headers.get('Allow', '?')}"
        elif e.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        else:
            message = str(e.detail)
        return JSONResponse(p.APIError(e.status_code, message).body(), status_code=e.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request, e: Exception):
        log.exception("unhandled error")
        return JSONResponse(p.APIError(500, f"internal error: {type(e).__name__}").body(), status_code=500)

    @app.get("/health")
    async def health():
        s = state.scheduler
        body = {"status": "shutting_down" if s.draining else "ok", "model": state.base_name}
        return JSONResponse(body, status_code=503 if s.draining else 200)

    @app.get("/metrics", dependencies=auth)
    async def metrics():
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    @app.get("/v1/models", dependencies=auth)
    async def models():
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "axial",
                 "axial": describe(name, source, state.resolve(source, "model"), engine.expert_names)}
                for name, source in state.models.items()]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", dependencies=auth)
    async def chat_completions(request: Request):
        return await _complete(state, request, p.parse(p.ChatRequest, await _json(request)))

    @app.post("/v1/completions", dependencies=auth)
    async def completions(request: Request):
        from axial.serve.completions import complete

        return await complete(state, request, p.parse(p.CompletionRequest, await _json(request)))

    @app.get("/tokenizer_info", dependencies=auth)
    async def tokenizer_info():
        from axial.serve.completions import tokenizer_info

        return tokenizer_info(state)

    @app.post("/tokenize", dependencies=auth)
    async def tokenize(request: Request):
        from axial.serve.completions import TokenizeRequest, tokenize

        return await tokenize(state, p.parse(TokenizeRequest, await _json(request)))

    @app.post("/detokenize", dependencies=auth)
    async def detokenize(request: Request):
        from axial.serve.completions import DetokenizeRequest, detokenize

        return await detokenize(state, p.parse(DetokenizeRequest, await _json(request)))

    return app


async def _json(request: Request):
    try:
        body = await request.body()
    except ClientDisconnect:  # gone, or cut off by the body timeout (axial.serve.connections): nobody to answer
        raise p.APIError(408, "the request body did not arrive") from None
    try:
        return json.loads(body)
    except RecursionError:
        # json's decoder recurses per nesting level; a hostile body must not become a 500 (which also costs
        # the client its keep-alive connection).
        raise p.APIError(400, "the request body is nested too deeply to parse") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, integers longer than 4300 digits
        raise p.APIError(400, f"the request body is not valid JSON: {e}") from None


async def _complete(state: ServerState, request: Request, req: p.ChatRequest):
    """/v1/chat/completions (/v1/completions: axial.serve.completions)."""
    gen, info = await state.prepare(req)
    row = state.submit(gen)
    rid = p.new_id("chatcmpl")
    n_prompt = len(gen.prompt_ids)
    if req.stream:
        usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(_sse(state, row, rid, req.model, True, n_prompt, usage),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    watcher = asyncio.create_task(_cancel_on_disconnect(state, request, row))
    parts: list[str] = []
    try:
        async for event in _events(state, row):
            if event.kind == "text":
                parts.append(event.text)
            elif event.kind == "error":
                raise p.APIError(event.status, event.text)
            else:
                break
    finally:
        watcher.cancel()
    if event.reason == "cancelled":
        return JSONResponse(p.APIError(499, "the client closed the request").body(), status_code=499)
    return p.chat_response(rid, req.model, "".join(parts), event.reason, n_prompt, event.tokens, info)


async def _events(state: ServerState, row: Row):
    """A row's events until its end; if the consumer goes away first, the row is cancelled."""
    try:
        while True:
            event = await row.events.get()
            yield event
            if event.kind != "text":
                return
    finally:
        if not row.ended:
            state.scheduler.cancel(row)


async def _cancel_on_disconnect(state: ServerState, request: Request, row: Row) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
    state.scheduler.cancel(row)


async def _sse(state: ServerState, row: Row, rid: str, model: str, chat: bool, n_prompt: int,
               include_usage: bool) -> AsyncIterator[str]:
    # Starlette cancels this generator when the client disconnects; `_events` then cancels the row.
    def data(obj) -> str:
        return f"data: {json.dumps(obj)}\n\n"

    if chat:
        yield data(p.chat_chunk(rid, model, delta={"role": "assistant", "content": ""}))
    async for event in _events(state, row):
        if event.kind == "text":
            yield data(p.chat_chunk(rid, model, delta={"content": event.text}) if chat
                       else p.completion_chunk(rid, model, text=event.text))
        elif event.kind == "error":
            yield data(p.APIError(event.status, event.text).body())
            return
        elif event.reason != "cancelled":
            yield data(p.chat_chunk(rid, model, delta={}, reason=event.reason) if chat
                       else p.completion_chunk(rid, model, text="", reason=event.reason))
            if include_usage:
                obj = "chat.completion.chunk" if chat else "text_completion"
                yield data(p.usage_chunk(rid, model, obj, n_prompt, event.tokens))
            yield "data: [DONE]\n\n"


class _TooLarge(Exception):
    pass


class _BodyLimit:
    """Refuse request bodies over `max_bytes` with a 413 (declared or streamed: chunked bodies are counted).

    Neither Starlette nor uvicorn has a body size limit, hence this small ASGI middleware.
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps(p.APIError(413, f"request body larger than {self.max_bytes} bytes").body()).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


_ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics",
                        "/tokenizer_info", "/tokenize", "/detokenize"})


class _Observe:
    """Count every response by endpoint and status, and time it to its last byte (streams included)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.monotonic()
        status = 500
        path = scope["path"] if scope["path"] in _ENDPOINTS else "other"  # bounded label values

        async def observed_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            self.metrics.requests.labels(path, str(status)).inc()
            self.metrics.latency.labels(path).observe(time.monotonic() - start)
