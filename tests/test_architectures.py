"""The same pipeline on several tiny architectures: Llama, Qwen2, Gemma3 and GPT-J (blocks at `transformer.h`,
attention `out_proj`, MLP `fc_in`/`fc_out`), so no part of axial depends on Llama's module names or layout."""

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from axial.arch import find_decoder_layers
from axial.mixture import LinearRouter, Mixture, experts_from_finetuned
from axial.mixture.resolved import Routed, Static
from axial.mixture.testing import write_random_adapter
from axial.testing import TINY_ARCHS, tiny_model

X = torch.randint(0, 250, (2, 6), generator=torch.Generator().manual_seed(0))


def logits(model, x=X):
    with torch.no_grad():
        return model(input_ids=x).logits


@pytest.fixture(scope="module", params=TINY_ARCHS)
def arch(request):
    return request.param


@pytest.fixture(scope="module")
def adapters(arch, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"adapters-{arch}")
    fresh = lambda: tiny_model(arch)[0]  # noqa: E731
    return [write_random_adapter(fresh, root / name, seed=i + 1, axis=name, r=2 + i, lora_alpha=4,
                                 target_modules="all-linear")
            for i, name in enumerate(["helpful", "harmless"])]


def test_decoder_stack_is_found_structurally(arch):
    model, _ = tiny_model(arch)
    stack = find_decoder_layers(model)
    assert len(stack) == 2
    assert stack.prefix == ("transformer.h" if arch == "gptj" else "model.layers")
    inside = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and stack.index_of(n) is not None]
    assert inside and "lm_head" not in inside and {stack.index_of(n) for n in inside} == {0, 1}


def test_one_hot_mixture_equals_peft(arch, adapters):
    model, _ = tiny_model(arch)
    mix = Mixture.attach(model, adapters)
    for i, adapter in enumerate(adapters):
        with mix.using(Static([1.0 if j == i else 0.0 for j in range(2)])):
            ours = logits(model)
        ref = logits(PeftModel.from_pretrained(tiny_model(arch)[0], str(adapter)).eval())
        assert not torch.allclose(ref, logits(tiny_model(arch)[0]), atol=1e-3)
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_router_hooks_every_block_and_generates_with_the_cache(arch, adapters):
    model, _ = tiny_model(arch)
    mix = Mixture.attach(model, adapters)
    hidden = model.config.get_text_config().hidden_size
    torch.manual_seed(0)
    router = LinearRouter(hidden, 2, num_layers=2)
    for head in router.heads:  # not the uniform start: the routing must depend on the hidden state
        torch.nn.init.normal_(head.weight)
    mix.use(Routed(router))
    logits(model)
    assert sorted(mix.state.gates) == [0, 1]
    # KV-cache decoding equals recomputing the whole sequence every step (routing per token included).
    cached = model.generate(X[:1], max_new_tokens=4, do_sample=False, use_cache=True)
    plain = model.generate(X[:1], max_new_tokens=4, do_sample=False, use_cache=False)
    assert torch.equal(cached, plain)


@pytest.mark.parametrize("fmt", ["hf", "peft"])
def test_export_reproduces_the_mixture(arch, adapters, tmp_path, fmt):
    from axial.export import export
    from axial.variants import LoadedVariant, VariantSpec

    model, tok = tiny_model(arch)
    mix = Mixture.attach(model, adapters)
    variant = LoadedVariant(VariantSpec(model=f"tiny-{arch}", experts=[str(a) for a in adapters],
                                        source="weights:helpful=0.7,harmless=0.3"), model, tok, mix)
    mix.use(Static([0.7, 0.3]))
    expected = logits(model)
    out = export(variant, "weights:helpful=0.7,harmless=0.3", tmp_path / fmt, format=fmt)
    if fmt == "hf":
        reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    else:
        reloaded = PeftModel.from_pretrained(tiny_model(arch)[0], str(out)).eval()
    torch.testing.assert_close(logits(reloaded), expected, atol=1e-4, rtol=0)


def test_svd_expert_covers_the_block_linears_only(arch):
    base, _ = tiny_model(arch)
    tuned, _ = tiny_model(arch)
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(0.01 * torch.randn_like(p))
    expert = experts_from_finetuned(base, tuned, rank=2)
    stack = find_decoder_layers(base)
    assert expert.factors and all(stack.index_of(m) is not None for m in expert.factors)


def test_expert_training_on_each_architecture(arch, tmp_path):
    from axial.data.records import SFTRecord
    from axial.experts.config import ExpertConfig
    from axial.experts.train import train_expert

    records = [("helpful", SFTRecord(messages=[{"role": "user", "content": f"Say {i}."}], response=f"{i}!",
                                     id=str(i))) for i in range(6)]
    cfg = ExpertConfig(axis="helpful", out=str(tmp_path / "e"), model=f"tiny-{arch}", max_steps=2, batch_size=2,
                       val_size=0, dtype="fp32", lora_r=2, lora_alpha=4)
    out = train_expert(cfg, records, base=tiny_model(arch))
    model, _ = tiny_model(arch)
    before = logits(model)
    mix = Mixture.attach(model, [out])
    assert mix.modules and all(find_decoder_layers(model).index_of(n) is not None for n in mix.modules)
    mix.use(Static([1.0]))
    assert not torch.allclose(logits(model), before, atol=1e-6)  # trained B is no longer zero
