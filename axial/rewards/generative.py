"""Generative judges: an LM reads a prompt template and we read its probability of each answer option.

Local models (`hf-gen:`, `embedded`) score with ONE forward pass per item: the next-token probabilities of the
options' first tokens ("Yes"/"No" for scoring, "A"/"B" for pairwise), renormalised over the options. No
sampling, so scores are deterministic probabilities. OpenAI-compatible endpoints (`openai:`) are asked for one
token with logprobs at temperature 0 and read the same way.

Templates are text files in axial/templates/: `judge_<axis>.txt` scores one response (fallback
`judge_axis.txt`, which uses the axis description, so user-defined axes work), `compare_<axis>.txt` compares
two. Placeholders: {conversation}, {response}, {response_a}, {response_b}, {axis_description}.
Pairwise comparison is asked in both orders and averaged, which cancels the judge's position bias and makes
compare(a, b) = 1 - compare(b, a) exactly.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from axial.data.records import Message
from axial.errors import AxialError
from axial.rewards.base import Judge, _check_lengths

SCORE_OPTIONS = ("Yes", "No")  # first = good
COMPARE_OPTIONS = ("A", "B")  # first = response A is better
_PLACEHOLDER = re.compile(r"\{(conversation|response|response_a|response_b|axis_description)\}")


def load_template(name: str, template_dir: str | Path | None = None) -> str | None:
    """Template text from `template_dir` (if given and present) or the packaged axial/templates; None if absent."""
    if template_dir is not None and (Path(template_dir) / name).is_file():
        return (Path(template_dir) / name).read_text()
    res = resources.files("axial") / "templates" / name
    return res.read_text() if res.is_file() else None


def render(template: str, **values: str) -> str:
    """Fill placeholders in one pass, so braces inside a response are never treated as placeholders."""
    def sub(m: re.Match) -> str:
        if m.group(1) not in values:
            raise AxialError(f"judge template needs {{{m.group(1)}}}, which this judge call does not provide")
        return values[m.group(1)]

    return _PLACEHOLDER.sub(sub, template)


def conversation_text(messages: Sequence[Message]) -> str:
    """The dialogue as plain text; a single user turn is shown bare (the templates label it)."""
    msgs = [m for m in messages if m["role"] != "system"]
    if len(msgs) == 1 and msgs[0]["role"] == "user":
        return msgs[0]["content"]
    return "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in msgs)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


class TemplateJudge(Judge):
    """Shared template logic; subclasses implement `_option_probs(prompts, options) -> P(first option)`."""

    def __init__(self, axis: str | None, template_dir: str | Path | None = None):
        from axial.axes import get_axis

        if axis is None:
            raise AxialError("a generative judge needs an axis (it picks the prompt template): pass axis=... "
                             "or --axis")
        self.axis = axis
        self.axis_description = get_axis(axis).description
        self.template_dir = template_dir
        self.score_template = (load_template(f"judge_{axis}.txt", template_dir)
                               or load_template("judge_axis.txt", template_dir))
        if self.score_template is None:
            raise AxialError(f"no judge template for axis '{axis}' (judge_{axis}.txt or judge_axis.txt)")
        self.compare_template = load_template(f"compare_{axis}.txt", template_dir)

    def _option_probs(self, prompts: list[str], options: tuple[str, str]) -> list[float]:
        raise NotImplementedError

    def _context(self, messages: Sequence[Message]) -> str:
        return conversation_text(messages)

    def _response(self, response: str) -> str:
        return response

    def score(self, prompts, responses) -> list[float]:
        """P(the reply has the axis's quality), e.g. P(safe) for harmless, P(true) for honest."""
        _check_lengths(prompts, responses)
        texts = [render(self.score_template, conversation=self._context(p), response=self._response(r),
                        axis_description=self.axis_description) for p, r in zip(prompts, responses, strict=True)]
        return self._option_probs(texts, SCORE_OPTIONS)

    def compare(self, prompts, responses_a, responses_b) -> list[float]:
        _check_lengths(prompts, responses_a, responses_b)
        if self.compare_template is None:
            # No pairwise template for this axis: combine the two independent scores as a BT logit difference.
            sa, sb = self.score(prompts, responses_a), self.score(prompts, responses_b)
            return [1 / (1 + math.exp(-(_logit(a) - _logit(b)))) for a, b in zip(sa, sb, strict=True)]
        texts = []
        for p, a, b in zip(prompts, responses_a, responses_b, strict=True):
            ctx, ra, rb = self._context(p), self._response(a), self._response(b)
            texts.append(render(self.compare_template, conversation=ctx, response_a=ra, response_b=rb,
                                axis_description=self.axis_description))
            texts.append(render(self.compare_template, conversation=ctx, response_a=rb, response_b=ra,
                                axis_description=self.axis_description))
        probs = self._option_probs(texts, COMPARE_OPTIONS)
        return [(probs[2 * i] + 1 - probs[2 * i + 1]) / 2 for i in range(len(prompts))]


class HFGenerativeJudge(TemplateJudge):
    """A local causal LM as judge. `embedded` is the embedded SmolLM2-135M: weak, labelled so in reports."""

    kind = "hf-gen"

    def __init__(self, model: str, axis: str | None = None, *, weak: bool = False, dtype: str = "auto",
                 batch_size: int = 8, max_prompt_tokens: int = 384, max_response_tokens: int = 384,
                 template_dir: str | Path | None = None, loaded=None):
        super().__init__(axis, template_dir)
        self.model_spec, self.weak, self.dtype, self.batch_size = model, weak, dtype, batch_size
        self.max_prompt_tokens, self.max_response_tokens = max_prompt_tokens, max_response_tokens
        self.name = "embedded (weak judge)" if model == "embedded" else f"hf-gen:{model}"
        self.path = model
        self._loaded = loaded  # (model, tokenizer) already in memory, e.g. a tiny test model

    def _load(self):
        if self._loaded is None:
            from axial.models import load_model

            self._loaded = load_model(self.model_spec, dtype=self.dtype)
        return self._loaded

    def _clip(self, text: str, limit: int, keep: str) -> str:
        _, tok = self._load()
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= limit:
            return text
        ids = ids[-limit:] if keep == "end" else ids[:limit]
        marker = "[...] " if keep == "end" else " [...]"
        body = tok.decode(ids, skip_special_tokens=True)
        return marker + body if keep == "end" else body + marker

    # Long inputs are clipped (dialogue keeps its end, a response its start) to bound cost on a CPU.
    def _context(self, messages):
        return self._clip(conversation_text(messages), self.max_prompt_tokens, keep="end")

    def _response(self, response):
        return self._clip(response, self.max_response_tokens, keep="start")

    def option_token_ids(self, options: tuple[str, str]) -> list[int]:
        _, tok = self._load()
        ids = [tok(o, add_special_tokens=False)["input_ids"][0] for o in options]
        if ids[0] == ids[1]:
            raise AxialError(f"judge model '{self.model_spec}': options {options} share their first token")
        return ids

    def _option_probs(self, prompts: list[str], options: tuple[str, str]) -> list[float]:
        import torch

        from axial.generate import chat_prompt_text

        model, tok = self._load()
        option_ids = torch.tensor(self.option_token_ids(options))
        texts = [chat_prompt_text(tok, [{"role": "user", "content": p}]) for p in prompts]
        encoded = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        out = [0.0] * len(texts)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        head = model.get_output_embeddings()
        bar = tqdm(total=len(texts), desc=f"judge {self.axis}", disable=len(texts) < 2 * self.batch_size,
                   leave=False)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(idx):
                ids[row, :len(encoded[i])] = torch.tensor(encoded[i])
                mask[row, :len(encoded[i])] = 1
            with torch.no_grad():
                # Right padding keeps positions exact without position_ids; only the last real token's state
                # goes through the LM head (a full [batch, len, vocab] logits tensor would be ~1 GB).
                hidden = model.base_model(input_ids=ids.to(model.device),
                                          attention_mask=mask.to(model.device)).last_hidden_state
                last = hidden[torch.arange(len(idx)), mask.sum(1) - 1]
                logits = head(last).float()[:, option_ids.to(model.device)]
            probs = torch.softmax(logits, dim=-1)[:, 0].cpu().tolist()
            for row, i in enumerate(idx):
                out[i] = probs[row]
            bar.update(len(idx))
        bar.close()
        return out

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(model=self.model_spec, options={"score": SCORE_OPTIONS, "compare": COMPARE_OPTIONS},
                 pairwise_template=self.compare_template is not None)
        return d


class OpenAIJudge(TemplateJudge):
    """An OpenAI-compatible chat endpoint as judge (env AXIAL_JUDGE_BASE_URL, AXIAL_JUDGE_API_KEY).

    Asks for one token at temperature 0 with top logprobs and renormalises over the two options. An endpoint
    without logprobs (no logprobs in the reply, or one that refuses the fields, as `axial serve` does) falls back
    to the reply text (probability 1 or 0) and says so in describe().
    """

    kind = "openai"

    def __init__(self, model: str, axis: str | None = None, *, base_url: str | None = None,
                 template_dir: str | Path | None = None, timeout: float = 60.0, retries: int = 3,
                 transport=None):
        import httpx

        super().__init__(axis, template_dir)
        self.model = model
        self.name = f"openai:{model}"
        base = base_url or os.environ.get("AXIAL_JUDGE_BASE_URL")
        if not base:
            raise AxialError("openai judge: set AXIAL_JUDGE_BASE_URL (e.g. https://api.openai.com/v1 or a local "
                             "vLLM/llama.cpp server) and, if the endpoint needs one, AXIAL_JUDGE_API_KEY")
        self.path = base.rstrip("/")
        headers = {}
        key = os.environ.get("AXIAL_JUDGE_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"  # never logged: describe() and errors omit headers
        self.retries = retries
        self.used_text_fallback = 0
        # Cleared when the endpoint refuses the logprobs fields (e.g. `axial serve`, some proxies): the judge
        # then reads the reply text, and describe() says so.
        self.logprobs_supported = True
        self._client = httpx.Client(base_url=self.path, headers=headers, timeout=timeout, transport=transport)

    def _ask(self, prompt: str, options: tuple[str, str]) -> float:
        import time

        import httpx

        for attempt in range(self.retries + 1):
            body = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 1,
                    "temperature": 0}
            if self.logprobs_supported:
                body.update(logprobs=True, top_logprobs=10)
            try:
                resp = self._client.post("/chat/completions", json=body)
            except httpx.HTTPError as e:
                if attempt == self.retries:
                    raise AxialError(f"openai judge at {self.path}: request failed: {type(e).__name__}: {e}") from e
                time.sleep(2 ** attempt)
                continue
            if resp.status_code in (429, 500, 502, 503, 504) and attempt < self.retries:
                time.sleep(2 ** attempt)
                continue
            if resp.status_code in (400, 422) and self.logprobs_supported and "logprobs" in resp.text:
                self.logprobs_supported = False
                return self._ask(prompt, options)
            if resp.status_code != 200:
                raise AxialError(f"openai judge at {self.path}: HTTP {resp.status_code}: {resp.text[:300]}")
            return self._parse(resp.json(), options)
        raise AssertionError("unreachable")

    def _parse(self, data: dict, options: tuple[str, str]) -> float:
        try:
            choice = data["choices"][0]
        except (KeyError, IndexError, TypeError) as e:
            raise AxialError(f"openai judge at {self.path}: unexpected reply {str(data)[:300]}") from e
        want = [o.lower() for o in options]
        mass = [0.0, 0.0]
        content = ((choice.get("logprobs") or {}).get("content") or [])
        for cand in (content[0].get("top_logprobs") or []) if content else []:
            token = cand.get("token", "").strip().lower()
            if token in want:
                mass[want.index(token)] += math.exp(cand["logprob"])
        if sum(mass) > 0:
            return mass[0] / sum(mass)
        text = ((choice.get("message") or {}).get("content") or "").strip().lower()
        # The reply is one token: with a fine-grained tokenizer that is only the start of an option ("Y"), which
        # counts when it starts exactly one option.
        hits = [i for i, o in enumerate(want) if text.startswith(o) or (text and o.startswith(text))]
        if len(hits) == 1:
            self.used_text_fallback += 1
            return 1.0 - hits[0]
        raise AxialError(f"openai judge at {self.path}: reply {text[:80]!r} is none of {options}")

    def _option_probs(self, prompts: list[str], options: tuple[str, str]) -> list[float]:
        return [self._ask(p, options) for p in tqdm(prompts, desc=f"judge {self.axis}",
                                                    disable=len(prompts) < 8, leave=False)]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(model=self.model, endpoint_logprobs=self.logprobs_supported,
                 text_fallback_items=self.used_text_fallback)
        return d
