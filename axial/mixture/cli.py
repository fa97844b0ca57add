"""`axial experts-from-finetuned`: bring a full fine-tuned model as a LoRA expert (HoE's SVD compression)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("experts-from-finetuned")
    def experts_from_finetuned_cmd(
        finetuned: str = typer.Option(..., help="the fine-tuned model: HF folder | hub id | .gguf"),
        rank: int = typer.Option(..., help="LoRA rank kept by the truncated SVD"),
        out: str = typer.Option(..., help="output adapter folder (PEFT LoRA + axial_expert.json)"),
        model: str = typer.Option("embedded", help="the base model it was fine-tuned from"),
        name: str | None = typer.Option(None, help="expert name, e.g. the axis (default: the folder name)"),
        target_modules: str | None = typer.Option(None, help="comma list of linear names/suffixes (default: "
                                                             "every linear in the decoder layers)"),
    ):
        """Compress θ_finetuned − θ_base per linear by truncated SVD into a plain PEFT LoRA adapter."""
        from axial.mixture import experts_from_finetuned, save_expert
        from axial.models import load_model

        base, _ = load_model(model, dtype="fp32", device="cpu")
        targets = [t for t in target_modules.split(",") if t] if target_modules else None
        expert = experts_from_finetuned(base, finetuned, rank, name=name, target_modules=targets)
        save_expert(expert, out)  # names the base portably from the reference the expert records
        m = expert.meta
        typer.echo(f"expert '{expert.name}': {len(expert.factors)} modules, rank {rank}, relative error mean "
                   f"{m['mean_relative_error']:.3g} / max {m['max_relative_error']:.3g}, task-vector share outside "
                   f"the linears {m['untracked_delta_fraction']:.3g} -> {out}")
