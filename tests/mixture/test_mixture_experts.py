import json

import pytest
import torch
from peft import PeftModel

from axial.errors import AxialError
from axial.mixture import Mixture, Static, experts_from_finetuned, load_lora_expert, save_expert
from axial.mixture.testing import write_random_adapter
from axial.testing import tiny_llama

Q = "model.layers.0.self_attn.q_proj"
DOWN = "model.layers.1.mlp.down_proj"


def fresh():
    return tiny_llama(seed=0)[0]


def out(model, x):
    with torch.no_grad():
        return model(input_ids=x).logits


def finetuned_with_rank2_updates(extra_norm_change=False):
    """A 'full fine-tune' whose task vector is exactly rank 2 on two linears."""
    ft = fresh()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name in (Q, DOWN):
            w = ft.get_submodule(name).weight
            w += 0.3 * torch.randn(w.shape[0], 2, generator=g) @ torch.randn(2, w.shape[1], generator=g)
        if extra_norm_change:
            ft.model.norm.weight += 0.5
    return ft


def test_svd_expert_reproduces_a_low_rank_finetune():
    ft = finetuned_with_rank2_updates()
    expert = experts_from_finetuned(fresh(), ft, rank=2, name="svd")
    assert sorted(expert.factors) == sorted([Q, DOWN])
    assert expert.meta["max_relative_error"] < 1e-5
    assert expert.meta["untracked_delta_fraction"] == 0.0
    model = fresh()
    mix = Mixture.attach(model, [expert])
    mix.use(Static([1.0]))
    x = torch.randint(0, 250, (2, 6))
    torch.testing.assert_close(out(model, x), out(ft, x), atol=1e-4, rtol=0)


def test_svd_truncation_error_and_untracked_share_are_reported():
    ft = finetuned_with_rank2_updates(extra_norm_change=True)
    expert = experts_from_finetuned(fresh(), ft, rank=1)
    assert expert.meta["max_relative_error"] > 0.05
    assert 0 < expert.meta["untracked_delta_fraction"] < 1


def test_svd_from_a_different_architecture_is_refused():
    with pytest.raises(AxialError, match="same architecture"):
        experts_from_finetuned(fresh(), tiny_llama(seed=0, layers=1)[0], rank=2)


def test_saved_expert_is_a_plain_peft_adapter(tmp_path):
    ft = finetuned_with_rank2_updates()
    expert = experts_from_finetuned(fresh(), ft, rank=2, name="svd")
    expert.factors[DOWN].scaling = 3.0  # folded into B on save, so any loader reproduces it
    folder = save_expert(expert, tmp_path / "svd")
    x = torch.randint(0, 250, (2, 6))
    model = fresh()
    Mixture.attach(model, [expert]).use(Static([1.0]))
    peft_model = PeftModel.from_pretrained(fresh(), str(folder)).eval()
    torch.testing.assert_close(out(peft_model, x), out(model, x), atol=1e-5, rtol=0)
    again = load_lora_expert(folder)
    assert again.name == "svd"


def test_save_with_different_ranks_uses_rank_pattern(tmp_path):
    ft = finetuned_with_rank2_updates()
    expert = experts_from_finetuned(fresh(), ft, rank=2, name="mixed")
    expert.factors[Q].A = expert.factors[Q].A[:1]
    expert.factors[Q].B = expert.factors[Q].B[:, :1]
    folder = save_expert(expert, tmp_path / "mixed")
    cfg = json.loads((folder / "adapter_config.json").read_text())
    assert {cfg["r"], *cfg["rank_pattern"].values()} == {1, 2} and len(cfg["rank_pattern"]) == 1
    model = fresh()
    Mixture.attach(model, [expert]).use(Static([1.0]))
    x = torch.randint(0, 250, (1, 5))
    peft_model = PeftModel.from_pretrained(fresh(), str(folder)).eval()
    torch.testing.assert_close(out(peft_model, x), out(model, x), atol=1e-5, rtol=0)


def test_missing_weights_file_and_bad_sidecar_are_named(tmp_path):
    folder = write_random_adapter(fresh, tmp_path / "a", r=2, target_modules=["q_proj"])
    (folder / "axial_expert.json").write_text("{not json")
    with pytest.raises(AxialError, match="axial_expert.json:1"):
        load_lora_expert(folder)
    (folder / "axial_expert.json").unlink()
    (folder / "adapter_model.safetensors").unlink()
    with pytest.raises(AxialError, match="no adapter_model.safetensors"):
        load_lora_expert(folder)
    with pytest.raises(AxialError, match="does not exist"):
        load_lora_expert(tmp_path / "nowhere")
    (folder / "adapter_config.json").unlink()
    with pytest.raises(AxialError, match="no adapter_config.json"):
        load_lora_expert(folder)


def test_experts_from_finetuned_cli(tiny_model_dir, tmp_path):
    from axial.cli import main

    ft = finetuned_with_rank2_updates()
    ft.save_pretrained(tmp_path / "ft")
    main(["experts-from-finetuned", "--model", str(tiny_model_dir), "--finetuned", str(tmp_path / "ft"),
          "--rank", "2", "--name", "honest", "--out", str(tmp_path / "svd")])
    expert = load_lora_expert(tmp_path / "svd")
    assert expert.name == "honest" and expert.meta["max_relative_error"] < 1e-5
    model = fresh()
    Mixture.attach(model, [expert]).use(Static([1.0]))
    x = torch.randint(0, 250, (1, 6))
    torch.testing.assert_close(out(model, x), out(ft, x), atol=1e-4, rtol=0)
