import json

import torch
from safetensors.torch import load_file

from axial.data.records import SFTRecord
from axial.experts import ExpertConfig, export_expert, train_expert
from axial.testing import tiny_llama


def test_bf16_export_loads_in_plain_peft_and_matches(tmp_path):
    from peft import PeftModel

    records = [("honest", SFTRecord(messages=[{"role": "user", "content": f"q{i}"}], response=f"a{i}"))
               for i in range(6)]
    src = train_expert(ExpertConfig(axis="honest", out=str(tmp_path / "src"), max_steps=2, batch_size=2,
                                    val_size=0, dtype="fp32", learning_rate=1e-2), records, base=tiny_llama())
    dst = export_expert(src, tmp_path / "dst", base_model="some/hub-id")
    assert all(t.dtype == torch.bfloat16 for t in load_file(str(dst / "adapter_model.safetensors")).values())
    assert json.loads((dst / "adapter_config.json").read_text())["base_model_name_or_path"] == "some/hub-id"
    assert json.loads((dst / "axial_expert.json").read_text())["axis"] == "honest"
    ids = torch.tensor([[3, 4, 5, 6]])
    logits = []
    for folder in (src, dst):
        model = PeftModel.from_pretrained(tiny_llama()[0], str(folder))
        with torch.no_grad():
            logits.append(model(ids).logits.float())
    assert torch.allclose(logits[0], logits[1], atol=1e-2)
