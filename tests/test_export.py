import json

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from axial.cli import main
from axial.errors import AxialError
from axial.export import export
from axial.mixture.testing import write_random_adapter
from axial.testing import tiny_llama
from axial.variants import LoadedVariant, VariantSpec, load_variant

AXES = ["helpful", "harmless", "honest"]
PREF = "helpful=0.6,harmless=0.4"
SRC = f"pref:{PREF}"


def fresh():
    return tiny_llama(seed=0)[0]


@pytest.fixture(scope="module")
def axis_adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("axis")
    return [write_random_adapter(fresh, root / a, seed=i + 1, axis=a, r=2 + i, lora_alpha=4, use_rslora=i == 1,
                                 target_modules=["q_proj", "o_proj", "gate_proj", "down_proj"])
            for i, a in enumerate(AXES)]


@pytest.fixture()
def variant(tiny_model_dir, axis_adapters):
    return load_variant(VariantSpec(model=str(tiny_model_dir), experts=[str(a) for a in axis_adapters],
                                    source=f"pref:{PREF}", dtype="fp32", device="cpu"))


def logits(model, x):
    with torch.no_grad():
        return model(input_ids=x).logits


X = torch.randint(0, 250, (2, 7), generator=torch.Generator().manual_seed(3))


def test_hf_export_reproduces_the_mixture(variant, tmp_path):
    expected = logits(variant.model, X)
    out = export(variant, SRC, tmp_path / "hf", format="hf")
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert not any("lora" in n for n, _ in reloaded.named_parameters())
    torch.testing.assert_close(logits(reloaded, X), expected, atol=1e-4, rtol=0)
    cfg = json.loads((out / "axial_export.json").read_text())
    assert cfg["expert_weights"] == pytest.approx([0.6, 0.4, 0.0])
    assert (out / "tokenizer.json").exists()
    torch.testing.assert_close(logits(variant.model, X), expected, atol=0, rtol=0)  # the mixture is intact


def test_peft_export_is_one_plain_adapter_of_summed_rank(variant, tiny_model_dir, tmp_path):
    expected = logits(variant.model, X)
    out = export(variant, SRC, tmp_path / "peft", format="peft")
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == 2 + 3  # the zero-weight honest expert is left out
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(out)).eval()
    torch.testing.assert_close(logits(peft_model, X), expected, atol=1e-4, rtol=0)


def test_export_refuses_a_non_empty_folder_and_a_bad_format(variant, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(AxialError, match="not empty"):
        export(variant, SRC, tmp_path / "x")
    with pytest.raises(AxialError, match="format"):
        export(variant, SRC, tmp_path / "y", format="gguf")


def test_export_cli_writes_a_loadable_adapter(tiny_model_dir, axis_adapters, tmp_path):
    out = tmp_path / "cli"
    main(["export", "--model", str(tiny_model_dir), "--experts", ",".join(str(a) for a in axis_adapters),
          "--source", "pref:harmless=1,honest=1", "--out", str(out), "--format", "peft"])
    cfg = json.loads((out / "axial_export.json").read_text())
    assert cfg["expert_weights"] == pytest.approx([0.0, 0.5, 0.5])
    assert cfg["source"] == "pref:harmless=0.5,honest=0.5"


def test_export_cli_old_preference_flag_still_works_and_says_what_to_use(tiny_model_dir, axis_adapters, tmp_path,
                                                                         capsys):
    out = tmp_path / "old"
    main(["export", "--model", str(tiny_model_dir), "--experts", ",".join(str(a) for a in axis_adapters),
          "--preference", "harmless=1,honest=1", "--out", str(out), "--format", "peft"])
    assert json.loads((out / "axial_export.json").read_text())["expert_weights"] == pytest.approx([0.0, 0.5, 0.5])
    assert "use --source pref:AXIS=W" in capsys.readouterr().err


def test_export_refuses_routed_and_base_sources(variant, tmp_path):
    from axial.mixture import LinearRouter, Routed

    with pytest.raises(AxialError, match="routes per input"):
        export(variant, Routed(LinearRouter(64, 3)), tmp_path / "r")
    with pytest.raises(AxialError, match="nothing to fold"):
        export(variant, "base", tmp_path / "b")


def test_export_cli_reports_bad_preferences_without_traceback(tiny_model_dir, axis_adapters, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["export", "--model", str(tiny_model_dir), "--experts", str(axis_adapters[0]),
              "--source", "pref:helpful=-1", "--out", str(tmp_path / "z")])
    assert e.value.code == 2
    assert "field 'helpful'" in capsys.readouterr().err


def test_merge_experts_cli(axis_adapters, tmp_path):
    out = tmp_path / "merged"
    main(["merge-experts", "--experts", str(axis_adapters[0]), "--experts", str(axis_adapters[1]),
          "--preference", "helpful=0.5,harmless=0.5", "--out", str(out), "method=ties", "density=0.4", "rank=3"])
    meta = json.loads((out / "axial_expert.json").read_text())
    assert meta["preference"] == {"helpful": 0.5, "harmless": 0.5, "honest": 0.0}
    assert json.loads((out / "merge_config.json").read_text())["density"] == 0.4
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 3


def test_peft_export_keeps_only_the_attached_modules(tiny_model_dir, axis_adapters, tmp_path):
    from axial.mixture import Mixture

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    mix = Mixture.attach(model, axis_adapters, target_modules=["q_proj"])
    out = export(LoadedVariant(VariantSpec(), model, None, mix), SRC, tmp_path / "q", format="peft")
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert all(m.endswith("q_proj") for m in cfg["target_modules"])
    from axial.sources import parse_source

    mix.use(parse_source(SRC))
    expected = logits(model, X)
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(out)).eval()
    torch.testing.assert_close(logits(peft_model, X), expected, atol=1e-4, rtol=0)
