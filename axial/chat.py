"""`axial chat`: talk to a model or a variant (experts + preference / routing) with its chat template."""

from __future__ import annotations

import sys

import typer

from axial import cliopts
from axial.errors import AxialError
from axial.generate import GenerationConfig, stream_response
from axial.sources import SOURCE_OPTION_HELP, Base, Source, parse_source


def chat(model: str = "embedded", prompt: str | None = None, *, experts: list[str] | None = None,
         source: str | Source = "base", max_new_tokens: int = 192, dtype: str = "auto", device: str = "auto",
         system: str | None = None, out=None) -> str:
    """Answer one prompt (streamed to `out`), or run an interactive session when prompt is None.

    `source` is any weight source over `experts` (axial.sources: base, uniform, expert:NAME, weights:...,
    pref:helpful=0.7,harmless=0.3, mocae:DIR). With the embedded model and no experts given, the experts shipped
    with axial are used.
    """
    from axial.models import load_model
    from axial.variants import VariantSpec, load_variant

    src = parse_source(source)
    experts = list(experts or [])
    if not isinstance(src, Base) and not experts:
        if model != "embedded":
            raise AxialError(f"chat: source '{src}' needs --experts (adapter folders)")
        from axial.experts import shipped_experts_dir

        root = shipped_experts_dir()
        experts = sorted(str(p.parent) for p in root.glob("*/adapter_model.safetensors"))
    out = out or sys.stdout
    base = load_model(model, dtype=dtype, device=device)
    variant = load_variant(VariantSpec(model=model, experts=experts, source=src.spec(), dtype=dtype,
                                       device=device), base=base)
    m, tok = variant.model, variant.tokenizer
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
        model: str = typer.Option("embedded", help=cliopts.MODEL_HELP),
        prompt: str | None = typer.Option(None, help="answer this and exit; interactive when omitted"),
        experts: list[str] = typer.Option(None, "--experts", help=cliopts.EXPERTS_HELP + " (default with the "
                                          "embedded model: the shipped experts)"),
        source: str = typer.Option("base", "--source", help=SOURCE_OPTION_HELP),
        preference: str | None = typer.Option(None, hidden=True, help="deprecated: --source pref:AXIS=W,..."),
        max_new_tokens: int = typer.Option(192, help="cap per answer (a chat turn; raise for long answers)"),
        dtype: str = typer.Option("auto", help=cliopts.DTYPE_HELP),
        device: str = typer.Option("auto", help=cliopts.DEVICE_HELP),
        system: str | None = typer.Option(None, help="system prompt"),
    ):
        """Chat with a model or a variant using its chat template (tokens stream as they are generated)."""
        if preference:
            cliopts.deprecated("--preference AXIS=W,...", "--source pref:AXIS=W,...")
            if source != "base":
                raise AxialError("chat: give --source or --preference, not both")
            source = f"pref:{preference}"
        chat(model, prompt, experts=cliopts.experts_list(experts), source=source,
             max_new_tokens=max_new_tokens, dtype=dtype, device=device, system=system)
