import io

import pytest

from axial.chat import chat
from axial.cli import main


def test_chat_python_api_streams(tiny_model_dir):
    out = io.StringIO()
    text = chat(str(tiny_model_dir), "hello", max_new_tokens=5, dtype="fp32", device="cpu", out=out)
    assert out.getvalue().rstrip("\n").strip() == text


def test_cli_bad_model_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["chat", "--model", "/no/such.gguf", "--prompt", "hi"])
    assert e.value.code == 2
    assert "GGUF file not found" in capsys.readouterr().err


def test_cli_chat_runs(tiny_model_dir, capsys):
    main(["chat", "--model", str(tiny_model_dir), "--prompt", "hi", "--max-new-tokens", "3", "--dtype", "fp32"])


def test_chat_with_preference_over_experts(tiny_model_dir, tmp_path):
    from axial.mixture.testing import write_random_adapter
    from axial.testing import tiny_llama

    dirs = [str(write_random_adapter(lambda: tiny_llama()[0], tmp_path / axis, seed=i, axis=axis, r=4,
                                     target_modules=["q_proj", "v_proj"]))
            for i, axis in enumerate(["helpful", "harmless"])]
    out_a, out_b = io.StringIO(), io.StringIO()
    a = chat(str(tiny_model_dir), "hi", experts=dirs, source="pref:helpful=1", max_new_tokens=6, dtype="fp32",
             out=out_a)
    b = chat(str(tiny_model_dir), "hi", experts=dirs, source="expert:helpful", max_new_tokens=6, dtype="fp32",
             out=out_b)
    assert a == b  # a one-axis preference routes to that axis's expert alone


def test_chat_source_without_experts_is_an_error(tiny_model_dir):
    from axial.errors import AxialError

    with pytest.raises(AxialError, match="needs --experts"):
        chat(str(tiny_model_dir), "hi", source="uniform", out=io.StringIO())
