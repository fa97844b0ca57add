import pytest

from axial.errors import AxialError
from axial.models import load_model, resolve_dtype, resolve_model_path


def test_folder_spec_loads_tiny(tiny_model_dir):
    model, tok = load_model(str(tiny_model_dir), dtype="fp32", device="cpu")
    assert model.config.num_hidden_layers == 2
    assert not model.training
    assert tok.pad_token is not None


@pytest.mark.parametrize("spec,match", [
    ("/nonexistent/model.gguf", "GGUF file not found"),
    ("not a model", "not 'embedded'"),
    ("./missing-folder", "not 'embedded'"),
])
def test_bad_specs(spec, match):
    with pytest.raises(AxialError, match=match):
        resolve_model_path(spec)


def test_folder_without_config(tmp_path):
    with pytest.raises(AxialError, match="no config.json"):
        resolve_model_path(str(tmp_path))


def test_plain_file_is_rejected(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(AxialError, match="not a .gguf"):
        resolve_model_path(str(f))


def test_hub_ids_pass_through():
    assert resolve_model_path("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_dtype_names():
    import torch

    assert resolve_dtype("fp32", "cpu") is torch.float32
    assert resolve_dtype("bf16", "cpu") is torch.bfloat16
    with pytest.raises(AxialError, match="dtype 'int3'"):
        resolve_dtype("int3", "cpu")


@pytest.mark.integration
def test_embedded_model_generates(embedded):
    from axial.generate import GenerationConfig, generate_responses

    model, tok = embedded
    assert model.config.hidden_size == 576 and model.config.num_hidden_layers == 30
    (answer,) = generate_responses(model, tok, ["What is the capital of France?"],
                                   GenerationConfig(max_new_tokens=12), progress=False)
    assert "Paris" in answer


def test_tokenizer_without_chat_template_gets_the_plain_one(tmp_path, caplog):
    from axial.models import PLAIN_CHAT_TEMPLATE
    from axial.testing import tiny_llama

    model, tok = tiny_llama()
    tok.chat_template = None
    model.save_pretrained(tmp_path, safe_serialization=True)
    tok.save_pretrained(tmp_path)
    with caplog.at_level("WARNING"):
        _, loaded = load_model(str(tmp_path), dtype="fp32", device="cpu")
    assert loaded.chat_template == PLAIN_CHAT_TEMPLATE and "no chat template" in caplog.text
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    head = loaded.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full = loaded.apply_chat_template(prompt + [{"role": "assistant", "content": "Hello."}], tokenize=False)
    assert head == f"{loaded.bos_token}System:\nBe brief.\n\nUser:\nHi?\n\nAssistant:\n"
    # TRL's prompt-completion training needs the prompt to be a prefix; the answer ends with EOS.
    assert full.startswith(head) and full[len(head):] == f"Hello.{loaded.eos_token}\n\n"
