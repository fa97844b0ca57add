"""Tiny random-init causal LMs and a byte-level tokenizer, built in-process in well under a second.

Used by the unit tests (and usable by users who want to smoke-test a pipeline): no downloads, no files.
`tiny_model(arch)` covers several architectures (Llama, Qwen2, Gemma3, and GPT-J, whose blocks live at
`transformer.h` with different module names), so nothing is tested only on Llama's layout.
"""

from __future__ import annotations

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|im_end|>", unk_token=None)
    fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    fast.chat_template = CHATML_TEMPLATE
    return fast


def tiny_llama(seed: int = 0, *, hidden_size: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
               intermediate_size: int = 128, vocab_size: int | None = None):
    """(model, tokenizer): a random-init LlamaForCausalLM, fp32, eval mode."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    cfg = LlamaConfig(
        vocab_size=vocab_size or len(tok), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=512, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    model.axial_spec = "tiny-llama"
    return model, tok


TINY_ARCHS = ("llama", "qwen2", "gemma3", "gptj")


def tiny_model(arch: str = "llama", seed: int = 0):
    """(model, tokenizer): a random-init 2-block causal LM of the given architecture, fp32, eval mode."""
    import torch
    import transformers

    if arch == "llama":
        return tiny_llama(seed)
    tok = tiny_tokenizer()
    common = dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    if arch == "qwen2":
        cfg = transformers.Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                       **common)
        cls = transformers.Qwen2ForCausalLM
    elif arch == "gemma3":
        # Both attention kinds (sliding and full), q/k norms and the extra feed-forward norms of Gemma 3.
        cfg = transformers.Gemma3TextConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                                            max_position_embeddings=512, sliding_window=8,
                                            layer_types=["sliding_attention", "full_attention"], **common)
        cls = transformers.Gemma3ForCausalLM
    elif arch == "gptj":
        cfg = transformers.GPTJConfig(n_embd=64, n_layer=2, n_head=4, rotary_dim=8, n_positions=512, **common)
        cls = transformers.GPTJForCausalLM
    else:
        raise ValueError(f"tiny_model: unknown arch {arch!r}; use one of {TINY_ARCHS}")
    torch.manual_seed(seed)
    model = cls(cfg).eval()
    model.axial_spec = f"tiny-{arch}"
    return model, tok


def save_tiny_model(path, arch: str = "llama", seed: int = 0):
    """Write a tiny model folder (safetensors + tokenizer) so CLI paths can be tested with a real spec."""
    model, tok = tiny_model(arch, seed)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def save_tiny_llama(path, seed: int = 0):
    """Write a tiny model folder (safetensors + tokenizer) so CLI paths can be tested with a real spec."""
    model, tok = tiny_llama(seed)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path
