"""The documented scale-out path: a preset exported with `axial export --format peft` and loaded by plain PEFT
(what vLLM's --lora-modules reads) answers exactly like the same preset served by `axial serve`."""

from __future__ import annotations

from serve_helpers import running

from axial.testing import save_tiny_llama, tiny_llama


def test_exported_preset_matches_served_preset(tmp_path, expert_dirs, engine):
    from peft import PeftModel

    from axial.export import export
    from axial.generate import GenerationConfig, generate_responses
    from axial.variants import VariantSpec, load_variant

    variant = load_variant(VariantSpec(model=str(save_tiny_llama(tmp_path / "tiny")),
                                       experts=[str(d) for d in expert_dirs], source="base", dtype="fp32"))
    out = export(variant, "pref:harmless=0.6,helpful=0.2,honest=0.2", tmp_path / "safe", format="peft")
    base, tok = tiny_llama()
    peft_model = PeftModel.from_pretrained(base, str(out)).eval()
    (expected,) = generate_responses(peft_model, tok, ["hi"], GenerationConfig(max_new_tokens=16), progress=False)

    with running(engine) as srv:
        reply = srv.client().chat.completions.create(model="tiny:safe", messages=[{"role": "user", "content": "hi"}],
                                                     max_tokens=16)
    assert reply.model_extra["axial"]["weights"] == {"helpful": 0.2, "harmless": 0.6, "honest": 0.2}
    assert reply.choices[0].message.content.strip() == expected
