"""Batched chat generation (left-padded, greedy by default) and token streaming for `axial chat`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from axial.config import Config
from axial.data.records import Message
from axial.errors import AxialError


@dataclass
class GenerationConfig(Config):
    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    batch_size: int = 8
    seed: int = 0
    system_prompt: str | None = None

    def validate(self) -> None:
        if self.max_new_tokens < 1:
            raise AxialError(f"GenerationConfig.max_new_tokens: must be >= 1, got {self.max_new_tokens}")
        if self.batch_size < 1:
            raise AxialError(f"GenerationConfig.batch_size: must be >= 1, got {self.batch_size}")
        if self.do_sample and not (self.temperature > 0):
            raise AxialError(f"GenerationConfig.temperature: must be > 0 when sampling, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise AxialError(f"GenerationConfig.top_p: must be in (0, 1], got {self.top_p}")


def as_messages(prompt: str | Sequence[Message], system_prompt: str | None = None) -> list[Message]:
    msgs = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    if system_prompt and (not msgs or msgs[0]["role"] != "system"):
        msgs = [{"role": "system", "content": system_prompt}] + msgs
    return msgs


def chat_prompt_text(tokenizer, messages: Sequence[Message]) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def encode_chat(tokenizer, prompts: Sequence[str | Sequence[Message]], system_prompt: str | None = None,
                device=None):
    """Left-padded batch of chat prompts (left padding keeps every row's last token at the end for decoding)."""
    texts = [chat_prompt_text(tokenizer, as_messages(p, system_prompt)) for p in prompts]
    old = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = old
    return batch.to(device) if device is not None else batch


def generate_responses(model, tokenizer, prompts: Sequence[str | Sequence[Message]],
                       config: GenerationConfig | None = None, *, progress: bool = True,
                       row_kwargs=None) -> list[str]:
    """Generate one response per prompt, in order.

    `row_kwargs(start, end)` may return extra forward kwargs for a slice of rows (e.g. per-row mixture
    weights); it is called once per batch.
    """
    import torch

    cfg = config or GenerationConfig()
    prompts = list(prompts)
    out: list[str] = [""] * len(prompts)
    # Sort by length so a batch pads little; restore the order at the end.
    order = sorted(range(len(prompts)), key=lambda i: len(str(prompts[i])))
    bar = tqdm(total=len(prompts), desc="generate", disable=not progress, leave=False)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        batch = encode_chat(tokenizer, [prompts[i] for i in idx], cfg.system_prompt, device=model.device)
        extra = row_kwargs(idx) if row_kwargs else {}
        if cfg.do_sample:
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        with torch.no_grad():
            seqs = model.generate(
                **batch, **extra, max_new_tokens=cfg.max_new_tokens, do_sample=cfg.do_sample,
                temperature=cfg.temperature if cfg.do_sample else None,
                top_p=cfg.top_p if cfg.do_sample else None, top_k=None,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        new = seqs[:, batch["input_ids"].shape[1]:]
        for j, i in enumerate(idx):
            out[i] = tokenizer.decode(new[j], skip_special_tokens=True).strip()
        bar.update(len(idx))
    bar.close()
    return out


def generate_completions(model, tokenizer, texts: Sequence[str], config: GenerationConfig | None = None, *,
                         stop: str | None = None) -> list[str]:
    """Greedy/sampled continuations of plain-text prompts (no chat template), in order, each cut at the first
    `stop` string (lm-eval's `until`); generation of a row ends once it has produced `stop`."""
    import torch

    cfg = config or GenerationConfig()
    texts = list(texts)
    out: list[str] = [""] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    old = tokenizer.padding_side
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        tokenizer.padding_side = "left"
        try:
            batch = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(model.device)
        finally:
            tokenizer.padding_side = old
        if cfg.do_sample:
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        stop_kwargs = {"stop_strings": [stop], "tokenizer": tokenizer} if stop else {}
        with torch.no_grad():
            seqs = model.generate(
                **batch, max_new_tokens=cfg.max_new_tokens, do_sample=cfg.do_sample,
                temperature=cfg.temperature if cfg.do_sample else None,
                top_p=cfg.top_p if cfg.do_sample else None, top_k=None,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **stop_kwargs)
        new = seqs[:, batch["input_ids"].shape[1]:]
        for j, i in enumerate(idx):
            text = tokenizer.decode(new[j], skip_special_tokens=True)
            if stop and stop in text:
                text = text[:text.index(stop)]
            out[i] = text
    return out


def stream_response(model, tokenizer, prompt: str | Sequence[Message],
                    config: GenerationConfig | None = None, **forward_kwargs) -> Iterator[str]:
    """Yield text pieces as they are generated (generation runs in a background thread)."""
    import threading

    import torch
    from transformers import TextIteratorStreamer

    cfg = config or GenerationConfig()
    batch = encode_chat(tokenizer, [prompt], cfg.system_prompt, device=model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    kwargs = dict(**batch, **forward_kwargs, max_new_tokens=cfg.max_new_tokens, do_sample=cfg.do_sample,
                  temperature=cfg.temperature if cfg.do_sample else None,
                  top_p=cfg.top_p if cfg.do_sample else None, top_k=None,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, streamer=streamer)

    def run():
        with torch.no_grad():
            model.generate(**kwargs)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield from streamer
    thread.join()
