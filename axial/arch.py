"""Where a causal LM keeps its decoder blocks, found from the module tree, not from an architecture's names.

Llama, Qwen2 and Gemma3 keep them at `model.layers`, GPT-2/GPT-J/Falcon at `transformer.h`, GPT-NeoX at
`gpt_neox.layers`, MPT at `transformer.blocks`. Nothing in axial hard-codes any of these: the block stack is the
`nn.ModuleList` whose length is the config's layer count (transformers maps `n_layer`, `num_layers` ... onto
`num_hidden_layers`) and whose entries are all one class; if several lists qualify, the one holding the most
parameters wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from axial.errors import AxialError


@dataclass(frozen=True)
class DecoderStack:
    prefix: str            # the list's name in model.named_modules(), e.g. "model.layers" or "transformer.h"
    layers: nn.ModuleList

    def __len__(self) -> int:
        return len(self.layers)

    def index_of(self, module_name: str) -> int | None:
        """The block a module lives in ("model.layers.3.mlp.up_proj" -> 3), or None outside the stack."""
        head = self.prefix + "." if self.prefix else ""
        if not module_name.startswith(head):
            return None
        first = module_name[len(head):].split(".", 1)[0]
        return int(first) if first.isdigit() and int(first) < len(self.layers) else None

    def block_prefix(self, idx: int) -> str:
        return f"{self.prefix}.{idx}" if self.prefix else str(idx)


def _layer_count(model) -> int | None:
    config = getattr(model, "config", None)
    if config is None:
        return None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    n = getattr(text, "num_hidden_layers", None)
    return int(n) if isinstance(n, int) else None


def find_decoder_layers(model: nn.Module) -> DecoderStack:
    """The model's stack of decoder blocks (see the module docstring); raises when there is none."""
    want = _layer_count(model)
    candidates = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(m) for m in module}) != 1:
            continue
        if want is not None and len(module) != want:
            continue
        size = sum(p.numel() for p in module.parameters())
        candidates.append((size, -name.count("."), name, module))
    if not candidates:
        raise AxialError(f"{type(model).__name__}: no stack of decoder blocks found (an nn.ModuleList of "
                         f"{want if want is not None else 'N'} blocks of one class)")
    _, _, name, module = max(candidates, key=lambda c: c[:2])
    return DecoderStack(name, module)


def set_decoder_layers(model: nn.Module, stack: DecoderStack, layers: nn.ModuleList) -> None:
    """Put `layers` where the stack lives (used to run a prefix of the blocks)."""
    parent, _, child = stack.prefix.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, layers)
