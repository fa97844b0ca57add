"""`AxialLM`: an lm-evaluation-harness model for any axial variant (base model + expert adapters + weight source).

It is lm-eval's own `HFLM` (tokenisation, `generate_until`, `loglikelihood_rolling`, chat templates all
unchanged, so numbers line up with `lm_eval --model hf`) around a model loaded by `axial.variants.load_variant`,
with the log-likelihood scoring replaced where axial needs something HFLM does not do:

- requests that share a context are scored together: the context runs once (its KV cache is kept) and the
  continuations run as one batch on that cache — multiple-choice tasks pay for each question once, not once
  per answer (HFLM only reuses logits for one-token continuations);
- a routed source (a MoCaE router, HoE anchors with routers) decides its expert weights from the context
  only, never from the continuation being scored (`Router.pool_over`), the way `axial eval` scores such
  variants; the continuation's own tokens are still routed per token by per-token routers (causally). Routed
  requests run as full context+continuation passes, several requests per batch, each row pooled over its own
  context. For `loglikelihood_rolling` the context of a window is what precedes it (the prefix token for the
  first window), so a per-sequence router decides from that.

Model arguments (`--model_args` / `model_args=`): model (an axial model spec: `embedded`, a .gguf, an HF folder
or hub id), experts (adapter folders: a list, or one string separated by commas), source (any axial weight
source, see `axial.sources`), dtype (auto | fp32 | bf16 | fp16), device (auto | cpu | cuda[:N]), batch_size,
max_length, name; and HFLM's add_bos_token, prefix_token_id, truncation, think_end_token, enable_thinking,
chat_template_args. Anything else is refused (an HFLM would pass it to from_pretrained, which never runs here).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Sequence

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from axial.errors import AxialError
from axial.variants import LoadedVariant, VariantSpec, load_variant

log = logging.getLogger("axial.lmeval")

_HF_OPTIONS = frozenset({"add_bos_token", "prefix_token_id", "truncation", "think_end_token", "enable_thinking",
                         "chat_template_args"})


def expert_list(experts) -> list[str]:
    """Adapter folders from a list or from one string ('a,b' or '[a,b]', as lm-eval's CLI may pass them)."""
    if experts is None or experts == "":
        return []
    if isinstance(experts, str):
        text = experts.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        return [p.strip().strip("'\"") for p in text.split(",") if p.strip()]
    if isinstance(experts, Sequence):
        return [str(e) for e in experts]
    raise AxialError(f"AxialLM experts: expected adapter folders (a list or 'a,b'), got {experts!r}")


def _device(device) -> str:
    if device is None or device == "":
        return "auto"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        # lm-eval's CLI sends --device cuda:0 unless told otherwise; its hf model falls back the same way.
        log.warning("device %s: CUDA is not available; using the CPU (pass --device cpu to silence this)", device)
        return "cpu"
    return device


class _DropPretrainedWarnings(logging.Filter):
    """HFLM warns that arguments are ignored when handed a loaded model; AxialLM consumed them itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return "already-initialized model" not in msg and "`pretrained` model kwarg is not of type" not in msg


@register_model("axial")
class AxialLM(HFLM):
    def __init__(self, model: str = "embedded", experts=None, source: str = "base", dtype: str = "auto",
                 device: str | None = "auto", batch_size: int | str = 8, max_batch_size: int | None = None,
                 max_length: int | None = None, name: str = "", variant: LoadedVariant | None = None,
                 **options):
        unknown = sorted(set(options) - _HF_OPTIONS)
        if unknown:
            raise AxialError(f"AxialLM: unknown model argument(s) {unknown}; known: model, experts, source, dtype, "
                             f"device, batch_size, max_length, name, {', '.join(sorted(_HF_OPTIONS))}")
        if str(batch_size).startswith("auto"):
            raise AxialError("AxialLM batch_size: 'auto' is not supported (it probes with full-length batches); "
                             "give a number, e.g. --batch_size 8")
        try:
            batch = int(batch_size)
        except (TypeError, ValueError):
            raise AxialError(f"AxialLM batch_size: expected a whole number, got {batch_size!r}") from None
        if batch < 1:
            raise AxialError(f"AxialLM batch_size: must be >= 1, got {batch}")
        if variant is None:
            spec = VariantSpec(model=str(model), experts=expert_list(experts), source=str(source),
                               dtype=str(dtype), device=_device(device), name=str(name or ""))
            variant = load_variant(spec)
        hf_log = logging.getLogger("lm_eval.models.huggingface")
        quiet = _DropPretrainedWarnings()
        hf_log.addFilter(quiet)
        try:
            super().__init__(pretrained=variant.model, tokenizer=variant.tokenizer, backend="causal",
                             batch_size=batch, max_batch_size=max_batch_size or 64, max_length=max_length,
                             **options)
        finally:
            hf_log.removeFilter(quiet)
        self.variant = variant
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters

    # ---- what lm-eval records about the model ---------------------------------------------------------
    def get_model_info(self) -> dict:
        # HFLM's asks the hub for the model's revision; a variant is described by what it was loaded from.
        spec = self.variant.spec
        return {"model_num_parameters": sum(p.numel() for p in self.model.parameters()),
                "model_dtype": str(self.model.dtype), "axial_model": spec.model, "axial_experts": list(spec.experts),
                "axial_source": str(self.variant.source)}

    @property
    def tokenizer_name(self) -> str:
        return f"axial-{self.variant.spec.model}".replace("/", "__")

    # ---- generation: HFLM's, with this variant's weights in force ---------------------------------------
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        self.variant.activate()
        return super().generate_until(requests, disable_tqdm=disable_tqdm)

    # ---- scoring --------------------------------------------------------------------------------------
    def _fit(self, ctx: list[int], cont: list[int]) -> tuple[list[int], list[int]]:
        """HFLM's left truncation: the last max_length + 1 tokens of context + continuation."""
        if not cont:
            raise AxialError("loglikelihood: a request has an empty continuation (nothing to score)")
        if len(cont) > self.max_length:
            raise AxialError(f"loglikelihood: a continuation of {len(cont)} tokens is longer than the model's "
                             f"max_length ({self.max_length})")
        if not ctx:
            raise AxialError("loglikelihood: a request has an empty context token list")
        full = (list(ctx) + list(cont))[-(self.max_length + 1):]
        return full[:len(full) - len(cont)], list(cont)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None,
                              **_kwargs) -> list[tuple[float, bool]]:
        self.variant.activate()
        batch = int(override_bs or self.batch_size)
        router = self.variant.router
        groups: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
        for i, (_, ctx, cont) in enumerate(requests):
            ctx, cont = self._fit(ctx, cont)
            groups.setdefault(tuple(ctx), []).append((i, cont))
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        pbar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0, desc="axial loglikelihood")
        # A static source shares each context's KV cache among its continuations; a routed source cannot (the
        # router would need the context's pooled state expanded to the batch), so it runs full passes.
        single: list[tuple[int, list[int], list[int]]] = []
        for ctx, items in groups.items():
            if router is None and len(items) > 1:
                scored = self._score_shared(list(ctx), [c for _, c in items], batch)
                for (i, _), res in zip(items, scored, strict=True):
                    results[i] = res
                pbar.update(len(items))
            else:
                single.extend((i, list(ctx), cont) for i, cont in items)
        single.sort(key=lambda r: -(len(r[1]) + len(r[2])))
        for start in range(0, len(single), batch):
            chunk = single[start:start + batch]
            for (i, _, _), res in zip(chunk, self._score_full([(c, t) for _, c, t in chunk], router), strict=True):
                results[i] = res
            pbar.update(len(chunk))
        pbar.close()
        for (request, _, _), res in zip(requests, results, strict=True):
            if request is not None:  # rolling windows come without a key; HFLM caches those per document
                self.cache_hook.add_partial("loglikelihood", request, res)
        return results

    def _forward(self, ids: torch.Tensor, keep=None, **kwargs):
        if keep is not None and self._keeps_logits:
            kwargs["logits_to_keep"] = keep
        with torch.no_grad():
            return self.model(ids.to(self.model.device), **kwargs)

    def _score_full(self, rows: list[tuple[list[int], list[int]]], router) -> list[tuple[float, bool]]:
        """One right-padded pass over context + continuation[:-1] per row (padding after the real tokens never
        reaches them under causal attention); routers pool over each row's context."""
        inputs = [(ctx + cont)[:-1] for ctx, cont in rows]
        width = max(len(x) for x in inputs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        context = torch.zeros((len(rows), width), dtype=torch.bool)
        for r, (x, (ctx, _)) in enumerate(zip(inputs, rows, strict=True)):
            ids[r, :len(x)] = torch.tensor(x)
            context[r, :len(ctx)] = True
        # Only the positions that predict a continuation token go through the LM head.
        needed = sorted({p for ctx, cont in rows for p in range(len(ctx) - 1, len(ctx) + len(cont) - 1)})
        where = {p: j for j, p in enumerate(needed)}
        keep = torch.tensor(needed) if self._keeps_logits else None
        pool = router.pool_over(context) if router is not None else contextlib.nullcontext()
        with pool:
            logits = self._forward(ids, keep).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        out = []
        for r, (ctx, cont) in enumerate(rows):
            pos = [len(ctx) - 1 + k for k in range(len(cont))]
            cols = torch.tensor([where[p] for p in pos] if keep is not None else pos, device=logprobs.device)
            out.append(self._pick(logprobs[r, cols], cont))
        return out

    def _score_shared(self, ctx: list[int], conts: list[list[int]], batch: int) -> list[tuple[float, bool]]:
        """The context once (KV cache kept), then its continuations in batches on that cache."""
        from transformers import DynamicCache

        out = self._forward(torch.tensor([ctx]), 1, use_cache=True)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        # Plain tensors: every batch builds its own cache from them (DynamicCache.update concatenates into new
        # tensors, so these are never modified).
        kv = [(k, v) for k, v, *_ in out.past_key_values]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        results = []
        for start in range(0, len(conts), batch):
            chunk = conts[start:start + batch]
            width = max(len(c) for c in chunk) - 1
            rest = None
            if width > 0:
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                for r, c in enumerate(chunk):
                    ids[r, :len(c) - 1] = torch.tensor(c[:-1])
                cache = DynamicCache(ddp_cache_data=[(k.expand(len(chunk), -1, -1, -1), v.expand(len(chunk), -1, -1, -1))
                                                     for k, v in kv], config=self.model.config)
                rest = torch.log_softmax(self._forward(ids, past_key_values=cache, use_cache=True).logits.float(), -1)
            for r, c in enumerate(chunk):
                rows = first[None] if len(c) == 1 else torch.cat([first[None], rest[r, :len(c) - 1]])
                results.append(self._pick(rows, c))
        return results

    @staticmethod
    def _pick(logprobs: torch.Tensor, cont: list[int]) -> tuple[float, bool]:
        """(summed log-probability of `cont`, whether greedy decoding would produce it) from its rows [n, V]."""
        target = torch.tensor(cont, device=logprobs.device)
        total = float(logprobs.gather(-1, target[:, None]).sum())
        return total, bool((logprobs.argmax(-1) == target).all())
