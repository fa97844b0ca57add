"""The model side of the server: tokenise requests and run one `model.generate` per batch.

A batch is a list of rows with different prompts, lengths, token budgets, stop strings and mixture weights.
All of them go through the same forward passes: the prompts are left-padded and the mixture gets one weight
row per sequence. A per-row `StoppingCriteria` reads each new token as it is produced, streams its text to the
row's owner, and ends a row when it hits EOS, a stop string, its own token budget, or when it is cancelled
(client gone, server shutting down). `generate` stops as soon as every row has ended.

The batches are static (collect, then generate to completion): a request that arrives while a batch runs waits
for the next one. Iteration-level (continuous) batching would need rows joining a live KV cache, which
`generate` cannot do; the cost here is latency for late arrivals, not throughput under load, where the next
batch starts the moment the last one ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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

    @property
    def batch_key(self) -> tuple:
        # `generate` takes one sampling config per call, so only requests that agree on it share a batch;
        # sources, prompts, budgets and stops may differ per row.
        return (self.temperature, self.top_p if self.temperature > 0 else 1.0)


class RowSink(Protocol):
    """What the engine needs from a scheduled row (implemented by `scheduler.Row`)."""

    request: GenRequest

    @property
    def cancelled(self) -> bool: ...

    def emit(self, text: str, tokens: int) -> None: ...

    def finish(self, reason: str, tokens: int) -> None: ...


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
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = frozenset(i for i in [*eos, tokenizer.eos_token_id] if i is not None)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)

    def encode_chat(self, messages: Sequence[dict]) -> list[int]:
        text = chat_prompt_text(self.tokenizer, messages)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer(text)["input_ids"]

    def run(self, rows: Sequence[RowSink]) -> None:
        """Generate every row to its end. Every row is finished (or cancelled) when this returns."""
        reqs = [r.request for r in rows]
        width = max(len(r.prompt_ids) for r in reqs)
        ids = torch.full((len(reqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(reqs), width), dtype=torch.long)
        for i, r in enumerate(reqs):  # left padding: every row's next token is at the end
            ids[i, width - len(r.prompt_ids):] = torch.tensor(r.prompt_ids)
            mask[i, width - len(r.prompt_ids):] = 1
        tracker = _RowTracker(rows, self.tokenizer, self.eos_ids)
        first = reqs[0]
        sampling = first.temperature > 0
        self._route(reqs)
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
            if self.mixture is not None:
                self.mixture.use(Static(None))
        tracker.close_all("length")

    def _route(self, reqs: Sequence[GenRequest]) -> None:
        if self.mixture is not None:
            self.mixture.use_rows([r.source for r in reqs])


class _RowTracker(StoppingCriteria):
    """Per-row bookkeeping, run by `generate` after each step: stream text, end rows, report which are done."""

    def __init__(self, rows: Sequence[RowSink], tokenizer, eos_ids: frozenset[int]):
        self.rows = list(rows)
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.tokens: list[list[int]] = [[] for _ in rows]
        self.sent = [0] * len(rows)  # characters of decoded text already emitted
        self.done = [False] * len(rows)

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        newest = input_ids[:, -1].tolist()
        for i, row in enumerate(self.rows):
            if self.done[i]:
                continue
            if row.cancelled:
                self._close(i, "cancelled")
                continue
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

    def _close(self, i: int, reason: str, *, flush: bool = True) -> None:
        if flush and reason != "cancelled":
            self._send(i, self.tokenizer.decode(self.tokens[i], skip_special_tokens=True))
        self.done[i] = True
        self.rows[i].finish(reason, len(self.tokens[i]))

    def close_all(self, reason: str) -> None:
        for i in range(len(self.rows)):
            if not self.done[i]:
                self._close(i, reason)
