"""Frozen-encoder features for reward heads: one batched forward pass per (prompt, response), cached on disk.

Training a head on cached features takes seconds, so layer / pooling / regularisation can be chosen on a dev
split without re-running the encoder. The cache is chunked safetensors files keyed by a hash of each text, so a
killed run resumes from its last finished chunk and a second reward model on the same data reuses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from axial.data.records import Message
from axial.errors import AxialError
from axial.io import atomic_output, atomic_write_json

POOLINGS = ("last", "mean")
CHUNK = 128


@dataclass(frozen=True)
class Item:
    """A prompt (chat messages) and one response to it: the unit a reward model scores."""

    messages: tuple[tuple[str, str], ...]
    response: str

    @classmethod
    def of(cls, messages: Sequence[Message], response: str) -> Item:
        return cls(tuple((m["role"], m["content"]) for m in messages), response)

    @property
    def key(self) -> str:
        return hashlib.sha1(json.dumps([self.messages, self.response]).encode()).hexdigest()

    def message_list(self) -> list[Message]:
        return [{"role": r, "content": c} for r, c in self.messages]


class Encoder:
    """A frozen decoder (causal LM, via AutoModel) that turns items into pooled hidden states."""

    def __init__(self, spec: str, *, dtype: str = "bf16", max_length: int = 512, max_response_tokens: int = 256,
                 batch_size: int = 8, model=None, tokenizer=None):
        self.spec, self.dtype, self.batch_size = spec, dtype, batch_size
        self.max_length, self.max_response_tokens = max_length, max_response_tokens
        if max_response_tokens >= max_length:
            raise AxialError(f"encoder: max_response_tokens ({max_response_tokens}) must be < max_length "
                             f"({max_length}) so some of the prompt fits")
        self._model, self._tok = model, tokenizer

    def _load(self):
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            from axial.models import resolve_device, resolve_dtype, resolve_model_path

            path = resolve_model_path(self.spec)
            device = resolve_device("auto")
            try:
                self._tok = AutoTokenizer.from_pretrained(path)
                # AutoModel gives the bare transformer for causal LMs and encoders alike: no LM head to compute.
                self._model = AutoModel.from_pretrained(path, dtype=resolve_dtype(self.dtype, device),
                                                        use_safetensors=True).to(device).eval()
            except OSError as e:
                raise AxialError(f"reward encoder '{self.spec}': cannot load from '{path}': {e}") from e
            if self._tok.pad_token is None:
                self._tok.pad_token = self._tok.eos_token
        return self._model, self._tok

    @property
    def num_layers(self) -> int:
        model, _ = self._load()
        return int(model.config.get_text_config().num_hidden_layers)

    @property
    def fingerprint(self) -> str:
        """Identifies everything that changes the features, so a cache is never reused across settings."""
        model, _ = self._load()
        name = getattr(model.config, "_name_or_path", "") or self.spec
        blob = json.dumps([self.spec, name, str(model.dtype), self.max_length, self.max_response_tokens])
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def _prompt_ids(self, messages: tuple[tuple[str, str], ...]) -> list[int]:
        _, tok = self._load()
        msgs = [{"role": r, "content": c} for r, c in messages]
        if tok.chat_template:
            text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        else:
            text = "".join(f"\n\n{m['role'].capitalize()}: {m['content']}" for m in msgs) + "\n\nAssistant: "
        ids = tok(text, add_special_tokens=False)["input_ids"]
        # Keep the end of a long dialogue: the turns nearest the response matter most. The budget does not
        # depend on the response, so every response to one prompt sees the same (shared, cached) prefix.
        return ids[max(0, len(ids) - (self.max_length - self.max_response_tokens - 1)):]

    def _response_ids(self, response: str) -> list[int]:
        _, tok = self._load()
        ids = tok(response, add_special_tokens=False)["input_ids"][: self.max_response_tokens]
        # The end-of-turn token closes the response, so `last` pooling reads a state that has seen all of it.
        return ids + [tok.eos_token_id] if tok.eos_token_id is not None else ids

    def encode(self, items: Sequence[Item], layers: Sequence[int], *, progress: bool = True,
               desc: str = "encode") -> dict[str, object]:
        """{f"{pooling}.{layer}": float tensor [len(items), hidden]} for every pooling and requested layer.

        The prompt is run once per distinct prompt and its KV cache reused for every response to it: pairs
        share their prompt (TruthfulQA has ~7 answers per question), which more than halves the encoder cost.
        """
        import copy

        import torch

        model, tok = self._load()
        n_layers = self.num_layers
        for layer in layers:
            if not 0 <= layer <= n_layers:
                raise AxialError(f"reward encoder '{self.spec}': layer {layer} out of range 0..{n_layers}")
        groups: dict[tuple, list[int]] = {}
        for i, it in enumerate(items):
            groups.setdefault(it.messages, []).append(i)
        hidden = model.config.get_text_config().hidden_size
        out = {f"{p}.{layer}": torch.zeros(len(items), hidden) for p in POOLINGS for layer in layers}
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        device = model.device
        bar = tqdm(total=len(items), desc=desc, disable=not progress, leave=False)
        with torch.no_grad(), _first_layers(model, max(layers) + 1 if max(layers) < n_layers else n_layers):
            for messages, members in groups.items():
                prompt = torch.tensor([self._prompt_ids(messages)], device=device)
                cache = model(input_ids=prompt, use_cache=True).past_key_values
                responses = {i: self._response_ids(items[i].response) for i in members}
                members = sorted(members, key=lambda i: len(responses[i]))
                for start in range(0, len(members), self.batch_size):
                    idx = members[start:start + self.batch_size]
                    width = max(len(responses[i]) for i in idx)
                    ids = torch.full((len(idx), width), pad, dtype=torch.long)
                    resp = torch.zeros((len(idx), width), dtype=torch.long)
                    for row, i in enumerate(idx):
                        ids[row, :len(responses[i])] = torch.tensor(responses[i])
                        resp[row, :len(responses[i])] = 1
                    past = copy.deepcopy(cache)
                    past.batch_repeat_interleave(len(idx))
                    mask = torch.cat([torch.ones(len(idx), prompt.shape[1], dtype=torch.long), resp], dim=1)
                    states = model(input_ids=ids.to(device), attention_mask=mask.to(device), past_key_values=past,
                                   use_cache=True, output_hidden_states=True).hidden_states
                    last = resp.sum(1) - 1
                    weights = resp.float()[..., None]
                    for layer in layers:
                        h = states[layer].float().cpu()
                        out[f"last.{layer}"][idx] = h[torch.arange(len(idx)), last]
                        # Mean over the response tokens only: the prompt is shared by both sides of a pair.
                        out[f"mean.{layer}"][idx] = (h * weights).sum(1) / weights.sum(1)
                    bar.update(len(idx))
        bar.close()
        return out


@contextlib.contextmanager
def _first_layers(model, k: int):
    """Run only the first k decoder layers: a head on a middle layer needs no later layer, and a reward model
    on layer 12 of 30 then scores 2.5x faster. hidden_states[i] for i < k are unchanged (only the last entry
    gets the final norm, which is why callers ask for one layer more than they read)."""
    from axial.arch import find_decoder_layers, set_decoder_layers

    stack = find_decoder_layers(model)
    if k >= len(stack):
        yield
        return
    config = model.config.get_text_config()
    n = config.num_hidden_layers
    set_decoder_layers(model, stack, stack.layers[:k])
    config.num_hidden_layers = k
    try:
        yield
    finally:
        set_decoder_layers(model, stack, stack.layers)
        config.num_hidden_layers = n


def cached_features(encoder: Encoder, items: Sequence[Item], layers: Sequence[int], cache_dir: Path | None,
                    *, progress: bool = True, desc: str = "encode", encode_missing: bool = True) -> dict[str, object]:
    """Features for `items` (same keys as Encoder.encode), computing only what the cache lacks.

    encode_missing=False raises instead of encoding (analysis scripts that must not start a long job)."""
    import torch
    from safetensors.torch import load_file, save_file

    if cache_dir is None:
        # Rounded like the cache, so a head scores exactly the features it was trained on.
        feats = encoder.encode(items, layers, progress=progress, desc=desc)
        return {k: v.to(torch.bfloat16).float() for k, v in feats.items()}
    root = Path(cache_dir) / encoder.fingerprint
    root.mkdir(parents=True, exist_ok=True)
    keys = [f"{p}.{layer}" for p in POOLINGS for layer in layers]
    known: dict[str, dict[str, object]] = {}
    for chunk in sorted(root.glob("chunk-*.safetensors")):
        meta_path = chunk.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
        if meta is None or not set(keys) <= set(meta["features"]):
            continue  # written for other layers; recomputed below rather than mixing settings
        tensors = load_file(chunk)
        for row, text_key in enumerate(meta["keys"]):
            known[text_key] = {k: tensors[k][row] for k in keys}
    missing = list(dict.fromkeys(it for it in items if it.key not in known))
    if missing and not encode_missing:
        raise AxialError(f"feature cache {root}: {len(missing)} of {len(items)} items are not encoded yet")
    if missing:
        bar = tqdm(total=len(missing), desc=desc, disable=not progress)
        for start in range(0, len(missing), CHUNK):
            part = missing[start:start + CHUNK]
            feats = encoder.encode(part, layers, progress=False)
            name = root / f"chunk-{hashlib.sha1(''.join(it.key for it in part).encode()).hexdigest()[:12]}"
            with atomic_output(f"{name}.safetensors") as tmp:
                save_file({k: v.to(torch.bfloat16).contiguous() for k, v in feats.items()}, str(tmp))
            # The metadata is written last: a chunk without it is ignored, so a kill never leaves a half chunk.
            atomic_write_json(name.with_suffix(".json"), {"keys": [it.key for it in part],
                                                          "features": sorted(feats)}, indent=None)
            for row, it in enumerate(part):
                known[it.key] = {k: feats[k][row].to(torch.bfloat16) for k in keys}
            bar.update(len(part))
        bar.close()
    return {k: torch.stack([known[it.key][k] for it in items]).float() for k in keys}
