"""`axial chat`: talk to a model (or a variant) with its chat template, streaming tokens."""

from __future__ import annotations

import sys

import typer

from axial.generate import GenerationConfig, stream_response


def chat(model: str = "embedded", prompt: str | None = None, *, max_new_tokens: int = 256,
         dtype: str = "auto", device: str = "auto", system: str | None = None, out=None) -> str:
    """Answer one prompt (streamed to `out`), or run an interactive session when prompt is None."""
    from axial.models import load_model

    out = out or sys.stdout
    m, tok = load_model(model, dtype=dtype, device=device)
    cfg = GenerationConfig(max_new_tokens=max_new_tokens, system_prompt=system)
    if prompt is not None:
        return _answer(m, tok, [{"role": "user", "content": prompt}], cfg, out)
    history: list[dict[str, str]] = []
    out.write("Interactive chat; empty line or Ctrl-D to quit.\n")
    while True:
        try:
            line = input("> ")
        except EOFError:
            break
        if not line.strip():
            break
        history.append({"role": "user", "content": line})
        history.append({"role": "assistant", "content": _answer(m, tok, history, cfg, out)})
    return ""


def _answer(model, tok, messages, cfg, out) -> str:
    pieces = []
    for piece in stream_response(model, tok, messages, cfg):
        pieces.append(piece)
        out.write(piece)
        out.flush()
    out.write("\n")
    return "".join(pieces).strip()


def register(app: typer.Typer) -> None:
    @app.command("chat")
    def chat_cmd(
        model: str = typer.Option("embedded", help="embedded | HF hub id | model folder | .gguf file"),
        prompt: str | None = typer.Option(None, help="answer this and exit; interactive when omitted"),
        max_new_tokens: int = typer.Option(256),
        dtype: str = typer.Option("auto", help="auto | fp32 | bf16"),
        device: str = typer.Option("auto", help="auto | cpu | cuda"),
        system: str | None = typer.Option(None, help="system prompt"),
    ):
        """Chat with a model using its chat template (tokens stream as they are generated)."""
        chat(model, prompt, max_new_tokens=max_new_tokens, dtype=dtype, device=device, system=system)
