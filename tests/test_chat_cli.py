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
