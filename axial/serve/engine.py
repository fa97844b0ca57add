"""The model side of the server: tokenise requests and run one `model.generate` per batch.

A batch is a list of rows with different prompts, lengths, token budgets, stop strings and mixture weights.
All of them go through the same forward passes: the prompts are left-padded and the mixture gets one weight
row per sequence. A per-row `StoppingCriteria` reads each new token as it is produced, streams its text to the
row's owner, and ends a row when it hits EOS, a stop string, its own token budget, or when it is cancelled
(client gone, server shutting down). `generate` stops as soon as every row has ended.

Scoring rows (a completion with max_tokens=0, or one greedy token, as lm-eval's local-completions asks for
log-likelihoods) skip `generate`: one forward pass over the right-padded prompts, each row with its own source,
gives every prompt token's log-probability and the greedy next token. Rows that ask for `logprobs` while
generating get them from the logits of every decoding step (the model's raw distribution, before temperature
or top-p), and, with `echo`, their prompt's from a scoring pass first.

The batches are static (collect, then generate to completion): a request that arrives while a batch runs waits
for the next one. Iteration-level (continuous) batching would need rows joining a live KV cache, which
`generate` cannot do; the cost here is latency for late arrivals, not throughput under load, where the next
batch starts the moment the last one ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from axial.generate import chat_prompt_text
from axial.mixture.resolved import Static, WeightSource


@dataclass(frozen=True)
class GenRequest:
    """One generation, already validated: token ids, budget, sampling, and where its mixture weights come from."""

    prompt_ids: tuple[int, ...]
    max_tokens: int
    # Any weight source (axial.sources); the base model alone by default. Static and routed sources share
    # batches: the mixture gives every row its own source (Mixture.use_rows).
    source: WeightSource = Static(None)
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    # Top-k log-probabilities for each generated token (None: none; 0: the chosen token's only).
    logprobs: int | None = None
    # Also the prompt tokens' log-probabilities (OpenAI's echo + logprobs), top-k as `logprobs`.
    prompt_logprobs: bool = False
    # Sampling with a seed runs alone in its batch, with the generator seeded: the same request, the same text.
    seed: int | None = None

    @property
    def scoring(self) -> bool:
        """Answered by one forward pass: no new tokens, or one greedy token with no stop strings."""
        return self.max_tokens == 0 or (self.max_tokens == 1 and self.temperature == 0 and not self.stop)

    @property
    def batch_key(self) -> tuple:
        # `generate` takes one sampling config per call, so only requests that agree on it share a batch;
        # sources, prompts, budgets and stops may differ per row. Scoring rows batch among themselves.
        if self.scoring:
            return ("score",)
        if self.temperature > 0 and self.seed is not None:
            return (self.temperature, self.top_p, self.seed, id(self))
        return (self.temperature, self.top_p if self.temperature > 0 else 1.0)


@dataclass
class TokenLogprobs:
    """Log-probabilities of a run of tokens: per token its log-probability (None for a prompt's first token,
    which nothing predicts) and the top-k alternatives as (token id, log-probability), best first."""

    ids: list[int] = field(default_factory=list)
    logprobs: list[float | None] = field(default_factory=list)
    top: list[list[tuple[int, float]] | None] = field(default_factory=list)

    def add(self, token: int, row_logprobs: torch.Tensor | None, k: int) -> None:
        self.ids.append(token)
        if row_logprobs is None:
            self.logprobs.append(None)
            self.top.append(None)
            return
        self.logprobs.append(float(row_logprobs[token]))
        if k > 0:
            values, idx = row_logprobs.topk(k)
            self.top.append(list(zip(idx.tolist(), values.tolist(), strict=True)))
        else:
            self.top.append([])


@dataclass
class RowLogprobs:
    """What a row reports besides its text: prompt and generated token log-probabilities."""

    prompt: TokenLogprobs | None = None
    generated: TokenLogprobs | None = None


class RowSink(Protocol):
    """What the engine needs from a scheduled row (implemented by `scheduler.Row`)."""

    request: GenRequest

    @property
    def cancelled(self) -> bool: ...

    def emit(self, text: str, tokens: int) -> None: ...

    def finish(self, reason: str, tokens: int, logprobs: RowLogprobs | None = None) -> None: ...


class Engine:
    """A loaded model (+ optional expert mixture) that generates batches of rows, one weight source per row.

    `sources` are named sources the server offers (as `<name>:<source name>` models and to requests that name
    them); `load_engine` fills them from `ServeConfig.sources`.
    """

    def __init__(self, model, tokenizer, *, name: str, mixture=None, sources: dict[str, WeightSource] | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.mixture = mixture
        self.sources = dict(sources or {})
        self.expert_names: list[str] = list(mixture.expert_names) if mixture is not None else []
        self.context_length = int(getattr(model.config, "max_position_embeddings", 0) or 2048)
        self.vocab_size = int(model.get_input_embeddings().num_embeddings)  # token ids a prompt may hold
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = frozenset(i for i in [*eos, tokenizer.eos_token_id] if i is not None)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)

    def encode_chat(self, messages: Sequence[dict]) -> list[int]:
        text = chat_prompt_text(self.tokenizer, messages)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer(text)["input_ids"]

    # Scoring passes are cut so that one pass's float32 log-probabilities [rows, tokens, vocab] stay near 1 GiB.
    SCORE_LOGITS_BUDGET = 1 << 28

    def run(self, rows: Sequence[RowSink]) -> None:
        """Generate (or score) every row to its end. Every row is finished (or cancelled) when this returns."""
        if rows[0].request.scoring:
            return self._score_rows(rows)
        reqs = [r.request for r in rows]
        prompt_lp = {i: lp for i, lp in zip(
            [i for i, r in enumerate(reqs) if r.prompt_logprobs],
            self.prompt_logprobs([r for r in reqs if r.prompt_logprobs]), strict=True)}
        width = max(len(r.prompt_ids) for r in reqs)
        ids = torch.full((len(reqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(reqs), width), dtype=torch.long)
        for i, r in enumerate(reqs):  # left padding: every row's next token is at the end
            ids[i, width - len(r.prompt_ids):] = torch.tensor(r.prompt_ids)
            mask[i, width - len(r.prompt_ids):] = 1
        tracker = _RowTracker(rows, self.tokenizer, self.eos_ids, prompt_lp)
        first = reqs[0]
        sampling = first.temperature > 0
        if sampling and first.seed is not None:
            torch.manual_seed(first.seed)
        self._route(reqs)
        # The logits each decoding step returns, for the rows that want their tokens' log-probabilities.
        hook = (self.model.register_forward_hook(tracker.record_logits)
                if any(r.logprobs is not None for r in reqs) else None)
        try:
            with torch.inference_mode():
                self.model.generate(
                    input_ids=ids.to(self.model.device), attention_mask=mask.to(self.model.device),
                    max_new_tokens=max(r.max_tokens for r in reqs), do_sample=sampling,
                    temperature=first.temperature if sampling else None,
                    top_p=first.top_p if sampling else None, top_k=None,
                    stopping_criteria=StoppingCriteriaList([tracker]),
                    pad_token_id=self.pad_id, eos_token_id=sorted(self.eos_ids))
        finally:
            if hook is not None:
                hook.remove()
            if self.mixture is not None:
                self.mixture.use(Static(None))
        tracker.close_all("length")

    def _route(self, reqs: Sequence[GenRequest]) -> None:
        if self.mixture is not None:
            self.mixture.use_rows([r.source for r in reqs])

    # ---- scoring ----------------------------------------------------------------------------------------
    def _passes(self, reqs: Sequence[GenRequest]) -> list[list[int]]:
        """Row indices per forward pass, longest first, each pass within SCORE_LOGITS_BUDGET."""
        vocab = int(self.model.config.get_text_config().vocab_size)
        order = sorted(range(len(reqs)), key=lambda i: -len(reqs[i].prompt_ids))
        passes: list[list[int]] = []
        for i in order:
            if passes and (len(passes[-1]) + 1) * len(reqs[passes[-1][0]].prompt_ids) * vocab <= self.SCORE_LOGITS_BUDGET:
                passes[-1].append(i)
            else:
                passes.append([i])
        return passes

    def _forward_logprobs(self, reqs: Sequence[GenRequest]) -> torch.Tensor:
        """log_softmax of one right-padded forward pass [B, T, V] (float32), each row with its own source.

        With the attention mask, a per-sequence router pools over each row's prompt, as it does when the row
        is generated from."""
        width = max(len(r.prompt_ids) for r in reqs)
        ids = torch.full((len(reqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(reqs), width), dtype=torch.long)
        for i, r in enumerate(reqs):
            ids[i, :len(r.prompt_ids)] = torch.tensor(r.prompt_ids)
            mask[i, :len(r.prompt_ids)] = 1
        self._route(reqs)
        try:
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(self.model.device), attention_mask=mask.to(self.model.device),
                                    use_cache=False).logits
        finally:
            if self.mixture is not None:
                self.mixture.use(Static(None))
        return torch.log_softmax(logits.float(), dim=-1)

    def prompt_logprobs(self, reqs: Sequence[GenRequest]) -> list[TokenLogprobs]:
        """Each prompt token's log-probability (the first token's None) and top-`logprobs` alternatives."""
        out: list[TokenLogprobs | None] = [None] * len(reqs)
        for group in self._passes(reqs):
            logprobs = self._forward_logprobs([reqs[i] for i in group])
            for row, i in enumerate(group):
                out[i] = self._prompt_row(reqs[i], logprobs[row])
        return out

    @staticmethod
    def _prompt_row(req: GenRequest, logprobs: torch.Tensor) -> TokenLogprobs:
        got = TokenLogprobs()
        k = req.logprobs or 0
        for t, token in enumerate(req.prompt_ids):
            got.add(token, logprobs[t - 1] if t > 0 else None, k)
        return got

    def _score_rows(self, rows: Sequence[RowSink]) -> None:
        """Scoring rows: one forward pass; with max_tokens=1 the greedy next token comes from the same pass."""
        reqs = [r.request for r in rows]
        for group in self._passes(reqs):
            live = [i for i in group if not rows[i].cancelled]
            for i in group:
                if rows[i].cancelled:
                    rows[i].finish("cancelled", 0)
            if not live:
                continue
            logprobs = self._forward_logprobs([reqs[i] for i in live])
            for row, i in enumerate(live):
                req, lp = reqs[i], logprobs[row]
                report = RowLogprobs(prompt=self._prompt_row(req, lp) if req.prompt_logprobs else None)
                if req.max_tokens == 0:
                    rows[i].finish("length", 0, report if req.logprobs is not None else None)
                    continue
                last = lp[len(req.prompt_ids) - 1]
                token = int(last.argmax())
                if req.logprobs is not None:
                    report.generated = TokenLogprobs()
                    report.generated.add(token, last, req.logprobs)
                if token in self.eos_ids:
                    rows[i].finish("stop", 0, report if req.logprobs is not None else None)
                    continue
                text = self.tokenizer.decode([token], skip_special_tokens=True)
                if text:
                    rows[i].emit(text, 1)
                rows[i].finish("length", 1, report if req.logprobs is not None else None)


class _RowTracker(StoppingCriteria):
    """Per-row bookkeeping, run by `generate` after each step: stream text, end rows, report which are done."""

    def __init__(self, rows: Sequence[RowSink], tokenizer, eos_ids: frozenset[int],
                 prompt_logprobs: dict[int, TokenLogprobs] | None = None):
        self.rows = list(rows)
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.tokens: list[list[int]] = [[] for _ in rows]
        self.sent = [0] * len(rows)  # characters of decoded text already emitted
        self.done = [False] * len(rows)
        prompt_logprobs = prompt_logprobs or {}
        self.reports = [RowLogprobs(prompt_logprobs.get(i), TokenLogprobs())
                        if r.request.logprobs is not None else None for i, r in enumerate(self.rows)]
        self.step_logprobs: torch.Tensor | None = None

    def record_logits(self, _module, _args, output) -> None:
        """Forward hook on the model: the last position's logits of each decoding step."""
        self.step_logprobs = torch.log_softmax(output.logits[:, -1].float(), dim=-1)

    def _note(self, i: int, token: int) -> None:
        report = self.reports[i]
        if report is not None and self.step_logprobs is not None:
            report.generated.add(token, self.step_logprobs[i], self.rows[i].request.logprobs)

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        newest = input_ids[:, -1].tolist()
        for i, row in enumerate(self.rows):
            if self.done[i]:
                continue
            if row.cancelled:
                self._close(i, "cancelled")
                continue
            self._note(i, newest[i])
            if newest[i] in self.eos_ids:
                self._close(i, "stop")
                continue
            self.tokens[i].append(newest[i])
            if not self._advance(i) and len(self.tokens[i]) >= row.request.max_tokens:
                self._close(i, "length")
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)

    def _advance(self, i: int) -> bool:
        """Emit the text that is safe to show; end the row at a stop string. True when the row ended."""
        text = self.tokenizer.decode(self.tokens[i], skip_special_tokens=True)
        stops = self.rows[i].request.stop
        hits = [h for h in (text.find(s) for s in stops) if h >= 0]
        if hits:
            self._send(i, text[:min(hits)])
            self._trim_logprobs(i, min(hits))
            self._close(i, "stop", flush=False)
            return True
        # Hold back an incomplete UTF-8 character and anything that could still grow into a stop string.
        safe = len(text.rstrip("\ufffd"))
        if stops:
            safe = min(safe, len(text) - max(len(s) for s in stops) + 1)
        self._send(i, text[:safe])
        return False

    def _send(self, i: int, text: str) -> None:
        if len(text) > self.sent[i]:
            self.rows[i].emit(text[self.sent[i]:], len(self.tokens[i]))
            self.sent[i] = len(text)

    def _trim_logprobs(self, i: int, chars: int) -> None:
        """Keep the log-probabilities of the tokens that make up the text kept before a stop string."""
        report = self.reports[i]
        if report is None:
            return
        n = next((n for n in range(len(self.tokens[i]) + 1)
                  if len(self.tokenizer.decode(self.tokens[i][:n], skip_special_tokens=True)) >= chars),
                 len(self.tokens[i]))
        g = report.generated
        g.ids, g.logprobs, g.top = g.ids[:n], g.logprobs[:n], g.top[:n]

    def _close(self, i: int, reason: str, *, flush: bool = True) -> None:
        if flush and reason != "cancelled":
            self._send(i, self.tokenizer.decode(self.tokens[i], skip_special_tokens=True))
        self.done[i] = True
        if self.reports[i] is not None and reason != "cancelled":
            self.rows[i].finish(reason, len(self.tokens[i]), self.reports[i])
        else:
            self.rows[i].finish(reason, len(self.tokens[i]))

    def close_all(self, reason: str) -> None:
        for i in range(len(self.rows)):
            if not self.done[i]:
                self._close(i, reason)
