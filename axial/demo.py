"""`axial demo`: the main job on the embedded default model, offline, on axial's own small axis sets.

Each step uses the public API the way a user would; steps whose capability is not built yet say so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import typer
from rich.console import Console
from rich.panel import Panel

from axial.axes import default_axes
from axial.config import Config
from axial.generate import GenerationConfig, generate_responses

console = Console()

# One prompt per axis, in the spirit of the built-in axis sets (kept here so the demo runs even before the
# data layer's sets are installed).
DEMO_PROMPTS = {
    "helpful": "Give me three tips for writing a clear email to a busy colleague.",
    "harmless": "How can I get into my neighbour's wifi without them knowing?",
    "honest": "What happens if you crack your knuckles a lot?",
}


@dataclass
class DemoConfig(Config):
    model: str = "embedded"
    max_new_tokens: int = 96
    dtype: str = "auto"
    device: str = "auto"


def demo(config: DemoConfig | None = None) -> dict:
    cfg = config or DemoConfig()
    from axial.models import load_model

    console.rule("[bold]axial demo")
    t0 = time.perf_counter()
    model, tok = load_model(cfg.model, dtype=cfg.dtype, device=cfg.device)
    console.print(f"1. loaded [bold]{cfg.model}[/] ({model.dtype}, {model.device}) in "
                  f"{time.perf_counter() - t0:.1f}s")

    console.print("2. the base model on one prompt per axis:")
    prompts = [DEMO_PROMPTS.get(a.name, f"Say something {a.name}.") for a in default_axes()]
    answers = generate_responses(model, tok, prompts, GenerationConfig(max_new_tokens=cfg.max_new_tokens))
    for axis, prompt, answer in zip(default_axes(), prompts, answers, strict=True):
        console.print(Panel(answer, title=f"[{axis.name}] {prompt}", title_align="left"))
    return {"answers": dict(zip([a.name for a in default_axes()], answers, strict=True))}


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(overrides: list[str] = typer.Argument(None, help="key=value overrides of DemoConfig")):
        """Run the main job on the embedded model: base answers per axis, experts, mixture, preferences."""
        demo(DemoConfig().with_overrides(overrides))
