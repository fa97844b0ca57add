"""POST /v1/completions: string or token-id prompts (one, or a list = a batch of choices), `echo`, `logprobs`.

The shapes follow OpenAI's legacy completions API and vLLM's implementation of it, which is what clients such
as lm-evaluation-harness's `local-completions` speak:

- `prompt`: a string, a list of token ids, a list of strings or a list of token-id lists. A list of prompts is
  a batch: choice i (`choices[i].index = i`) answers prompt i; every prompt is its own row in the scheduler, so
  it batches with whatever else is running, and a mixed batch gives each row what it would get alone.
- `echo`: the choice's text starts with the prompt (a token-id prompt is decoded).
- `logprobs` = k (0..20): `{"tokens", "token_logprobs", "top_logprobs", "text_offset"}` over the returned
  tokens (with `echo`, the prompt's first, whose first token has null log-probability and alternatives). Each
  `top_logprobs` entry holds the k most likely tokens and always the chosen one (so up to k + 1, as vLLM);
  tokens are the decoded text of each token id, `text_offset` the running sum of their lengths (as vLLM).
  Log-probabilities are the model's own distribution (before temperature / top-p). A generation that ends
  on the end-of-sequence token lists that token last (its text is not in the choice's text).
- `max_tokens: 0` generates nothing: with `echo` + `logprobs` this scores the prompt. Scoring requests (and a
  single greedy token without stop strings, which is what lm-eval's loglikelihood sends) are answered by one
  forward pass over the prompt, not by `generate`.
- `axial` / the model name choose the weight source exactly as in chat (one source for all the prompts). A
  per-sequence router routes from the whole prompt it is given: the API does not know where a scored
  continuation starts, so for lm-eval log-likelihoods it pools over context + continuation, where the in-process
  `axial.lmeval.AxialLM` pools over the context only. Static sources give the same numbers either way.
- `stream` works for one prompt without `logprobs` (with `echo`, the prompt comes as the first chunk); a batch
  of prompts, `logprobs` or max_tokens=0 with `stream` is a 400.
- GET /tokenizer_info, POST /tokenize and /detokenize as vLLM has them, so lm-eval's `tokenizer_backend=auto`
  (or `remote`) uses the served model's own tokenizer and needs no local copy.
- `seed` makes sampling repeatable: a seeded sampling request runs alone in its batch with the generator
  seeded. It does nothing for greedy decoding, which is deterministic anyway.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from axial.serve import protocol as p
from axial.serve.engine import RowLogprobs


def _prompt_ids(state, prompt, param: str) -> list[int]:
    vocab = state.engine.vocab_size
    bad = next((j for j, t in enumerate(prompt) if not 0 <= t < vocab), None)
    if bad is not None:
        where = f"{param}[{bad}]"
        raise p.APIError(400, f"{where}: token id {prompt[bad]} is not in this model's vocabulary "
                         f"(0..{vocab - 1})", param=where)
    return list(prompt)


def _check_stream(req: p.CompletionRequest, n_prompts: int) -> None:
    for bad, why in ((n_prompts > 1, "a list of prompts"), (req.logprobs is not None, "logprobs"),
                     (req.max_tokens == 0, "max_tokens=0")):
        if bad:
            param = "prompt" if why == "a list of prompts" else why.split("=")[0]
            raise p.APIError(400, f"{param}: {why} cannot be streamed; send stream=false", param=param)


async def complete(state, request: Request, req: p.CompletionRequest):
    prompts = req.prompts()
    batch = isinstance(req.prompt, list) and not isinstance(req.prompt[0], int)
    if req.stream:
        _check_stream(req, len(prompts))
    source, resolved = state.route(req)
    info = state.describe_source(req, source, resolved)
    gens, texts = [], []
    for i, prompt in enumerate(prompts):
        param = f"prompt[{i}]" if batch else "prompt"
        if isinstance(prompt, str):
            ids = await asyncio.to_thread(state.engine.encode_text, prompt)
            texts.append(prompt)
        else:
            ids = _prompt_ids(state, prompt, param)
            texts.append(state.engine.tokenizer.decode(ids) if req.echo else "")
        gens.append(state.admit(req, ids, source, prompt_param=param, max_tokens=req.max_tokens,
                                budget_param="max_tokens", logprobs=req.logprobs,
                                prompt_logprobs=req.echo and req.logprobs is not None, seed=req.seed))
    rid = p.new_id("cmpl")
    if req.stream:
        return _stream(state, req, gens[0], texts[0], rid)
    rows = _submit_all(state, gens)
    watcher = asyncio.create_task(_cancel_on_disconnect(state, request, rows))
    try:
        ends = await asyncio.gather(*(_collect(state, row) for row in rows))
    except BaseException:
        for row in rows:
            if not row.ended:
                state.scheduler.cancel(row)
        raise
    finally:
        watcher.cancel()
    if any(reason == "cancelled" for _, reason, _, _ in ends):
        return JSONResponse(p.APIError(499, "the client closed the request").body(), status_code=499)
    tok = state.engine.tokenizer
    choices = [{"index": i, "text": (texts[i] if req.echo else "") + text, "finish_reason": reason,
                "logprobs": None if req.logprobs is None else openai_logprobs(tok, lp, req.logprobs)}
               for i, (text, reason, _, lp) in enumerate(ends)]
    return p.completion_response(rid, req.model, choices, sum(len(g.prompt_ids) for g in gens),
                                 sum(n for _, _, n, _ in ends), info)


def _submit_all(state, gens) -> list:
    """Admit every prompt or none: if the queue fills part-way, the rows already admitted are withdrawn."""
    rows = []
    try:
        for gen in gens:
            rows.append(state.submit(gen))
    except p.APIError as e:
        for row in rows:
            state.scheduler.cancel(row)
        if e.status == 429:
            raise p.APIError(429, f"the server is busy: {len(rows)} of {len(gens)} prompts fitted in its queue "
                             f"(max_queue {state.config.max_queue}); retry later or send fewer prompts per "
                             "request", code="queue_full", headers=e.headers) from None
        raise
    return rows


async def _collect(state, row) -> tuple[str, str, int, RowLogprobs | None]:
    from axial.serve.app import _events

    parts = []
    async for event in _events(state, row):
        if event.kind == "text":
            parts.append(event.text)
        elif event.kind == "error":
            raise p.APIError(event.status, event.text)
        else:
            return "".join(parts), event.reason, event.tokens, event.logprobs
    raise p.APIError(500, "a completion row ended without an ending")  # pragma: no cover - engine contract


async def _cancel_on_disconnect(state, request: Request, rows) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
    for row in rows:
        state.scheduler.cancel(row)


def _stream(state, req: p.CompletionRequest, gen, prompt_text: str, rid: str) -> StreamingResponse:
    from axial.serve.app import _sse

    row = state.submit(gen)
    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    async def events():
        if req.echo and prompt_text:
            yield f"data: {json.dumps(p.completion_chunk(rid, req.model, text=prompt_text))}\n\n"
        async for chunk in _sse(state, row, rid, req.model, False, len(gen.prompt_ids), include_usage):
            yield chunk

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def openai_logprobs(tokenizer, report: RowLogprobs | None, k: int) -> dict:
    """OpenAI's completions `logprobs` object for a row's prompt (when echoed) and generated tokens."""
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top_logprobs: list[dict[str, float] | None] = []
    text_offset: list[int] = []
    offset = 0
    runs = [] if report is None else [r for r in (report.prompt, report.generated) if r is not None]
    for run in runs:
        for token, lp, top in zip(run.ids, run.logprobs, run.top, strict=True):
            piece = tokenizer.decode([token])
            tokens.append(piece)
            token_logprobs.append(lp)
            text_offset.append(offset)
            offset += len(piece)
            if top is None:
                top_logprobs.append(None)
                continue
            entry: dict[str, float] = {}
            for alt, alt_lp in top[:k]:
                entry.setdefault(tokenizer.decode([alt]), alt_lp)
            entry.setdefault(piece, lp)
            top_logprobs.append(entry)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top_logprobs,
            "text_offset": text_offset}


# ---- vLLM's tokenizer endpoints: what lm-eval's remote tokenizer backend needs ----------------------------------
class TokenizeRequest(p._Strict):
    prompt: str
    add_special_tokens: bool = True
    model: str | None = None


class DetokenizeRequest(p._Strict):
    tokens: list[int]
    model: str | None = None


def _check_model(state, model: str | None) -> None:
    if model is not None and model not in state.models:
        raise p.APIError(404, f"model: unknown model '{model}'; served: {sorted(state.models)}", param="model",
                         code="model_not_found")


def tokenizer_info(state) -> dict:
    tok = state.engine.tokenizer
    return {"tokenizer_class": type(tok).__name__, "eos_token": tok.eos_token, "bos_token": tok.bos_token,
            "pad_token": tok.pad_token, "chat_template": getattr(tok, "chat_template", None),
            "model_max_length": state.engine.context_length}


async def tokenize(state, req: TokenizeRequest) -> dict:
    _check_model(state, req.model)
    tok = state.engine.tokenizer
    ids = await asyncio.to_thread(lambda: tok(req.prompt, add_special_tokens=req.add_special_tokens)["input_ids"])
    return {"tokens": ids, "count": len(ids), "max_model_len": state.engine.context_length}


async def detokenize(state, req: DetokenizeRequest) -> dict:
    _check_model(state, req.model)
    _prompt_ids(state, req.tokens, "tokens")
    return {"prompt": await asyncio.to_thread(state.engine.tokenizer.decode, req.tokens)}
