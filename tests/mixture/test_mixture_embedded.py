import pytest
import torch
from peft import PeftModel

from axial.mixture import Mixture, Static
from axial.mixture.testing import write_random_adapter
from axial.models import load_model

pytestmark = pytest.mark.integration


def test_mixture_on_the_embedded_model_matches_peft_and_the_kv_cache(embedded, tmp_path):
    model, tok = embedded

    def fresh():
        return load_model("embedded", dtype="fp32")[0]

    adapters = [write_random_adapter(fresh, tmp_path / a, seed=i, axis=a, r=4, lora_alpha=4,
                                     target_modules=["q_proj", "down_proj"]) for i, a in enumerate(["helpful", "honest"])]
    x = tok(["The capital of France is", "Two plus two equals"], return_tensors="pt", padding=True)
    mix = Mixture.attach(model, adapters)
    try:
        with torch.no_grad():
            mix.use(Static([0.0, 1.0]))
            ours = model(**x).logits
            ref = PeftModel.from_pretrained(fresh(), str(adapters[1])).eval()(**x).logits
            torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)

            mix.use(Static([[1.0, 0.0], [0.3, 0.7]]))
            ids = tok(["Hello there", "Good night"], return_tensors="pt")["input_ids"]
            cached = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6,
                                    do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=None)
            seq = ids
            for _ in range(6):
                nxt = model(input_ids=seq, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
                seq = torch.cat([seq, nxt], 1)
            assert torch.equal(cached, seq)
    finally:
        mix.detach()
