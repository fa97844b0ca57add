import json

import pytest
import torch

from axial.axes import axis_names


@pytest.mark.integration
def test_shipped_experts_load_in_plain_peft_on_the_embedded_model(embedded):
    from peft import PeftModel

    from axial.errors import AxialError
    from axial.experts import shipped_experts_dir

    try:
        folder = shipped_experts_dir()
    except AxialError:
        pytest.skip("no shipped experts in this checkout")
    model, tok = embedded
    ids = tok("What happens if you crack your knuckles a lot?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        base = model(ids).logits
    for axis in axis_names():
        side = json.loads((folder / axis / "axial_expert.json").read_text())
        assert side["axis"] == axis and side["split"] == "train" and side["injection"]["at_inference"] is False
        peft_model = PeftModel.from_pretrained(model, str(folder / axis))
        with torch.no_grad():
            adapted = peft_model(ids).logits
        assert adapted.shape == base.shape and not torch.allclose(adapted, base)
        model = peft_model.unload()  # back to the plain base for the next axis
