"""`axial export`: fold a variant with a static weight source into something any serving stack loads.

  hf   : W' = W + Σ_k w_k s_k B_k A_k in every adapted linear, saved as a plain HF model folder (zero overhead)
  peft : one LoRA adapter of rank Σ r_k, A = [A_1; ...; A_K], B = [w_1 s_1 B_1, ..., w_K s_K B_K]; exact,
         because B A = Σ_k w_k s_k B_k A_k, and loadable by plain PEFT and vLLM
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from axial import cliopts
from axial.config import Config
from axial.errors import AxialError
from axial.io import atomic_dir
from axial.mixture.resolved import Routed, WeightSource
from axial.sources import SOURCE_OPTION_HELP, Source, parse_source

FORMATS = ("hf", "peft")


@dataclass
class ExportConfig(Config):
    """Saved as axial_export.json beside every export: what was folded, from what."""

    model: str = ""
    experts: list[str] = field(default_factory=list)
    source: str = ""
    format: str = "hf"
    expert_names: list[str] = field(default_factory=list)
    expert_weights: list[float] = field(default_factory=list)

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise AxialError(f"ExportConfig.format: {self.format!r}; use one of {list(FORMATS)}")


def _combined_expert(mixture, weights: list[float], name: str):
    import torch

    from axial.mixture import Expert, LoraFactors

    factors = {}
    for module in mixture.modules:  # only what is attached (target_modules may have narrowed it)
        parts = [(w, e.factors[module]) for w, e in zip(weights, mixture.experts, strict=True)
                 if w != 0 and module in e.factors]
        if not parts:
            continue
        A = torch.cat([f.A.float() for _, f in parts], dim=0)
        B = torch.cat([w * f.scaling * f.B.float() for w, f in parts], dim=1)
        factors[module] = LoraFactors(A, B, 1.0)
    if not factors:
        raise AxialError("export: every expert weight is zero; the result would be the base model")
    return Expert(name=name, factors=factors)


def export(variant, source: str | WeightSource, out: str | Path, format: str = "hf", axes=None) -> Path:
    """Write the variant's mixture under a static weight source (e.g. `pref:harmless=0.6,helpful=0.4`,
    `weights:...`, `expert:NAME`, `uniform`) to `out`: an HF model folder or a PEFT adapter."""
    cfg = ExportConfig(format=format)
    mixture = getattr(variant, "mixture", None)
    if mixture is None:
        raise AxialError("export: the variant has no experts attached (give --experts)")
    if not isinstance(source, WeightSource):
        source = parse_source(source, axes=axes)
    resolved = mixture.resolve(source)
    if isinstance(resolved, Routed):
        raise AxialError(f"export: source '{source}' routes per input (a router decides the expert weights), so "
                         "it cannot be folded into fixed weights; export a static source (pref with static "
                         "anchors, weights, expert, uniform)")
    if resolved.weights is None:
        raise AxialError(f"export: source '{source}' is the base model; there is nothing to fold")
    weights = mixture.as_weights(resolved.weights)
    if weights.dim() != 1:
        raise AxialError(f"export: source '{source}' gives weights of shape {list(weights.shape)}; export folds "
                         "one weight vector [K]")
    weights = [float(w) for w in weights.tolist()]
    label = source.spec() if isinstance(source, Source) else "static weights"
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise AxialError(f"export: output folder {out} exists and is not empty")
    model, tok = variant.model, variant.tokenizer
    spec = getattr(variant, "spec", None)
    cfg = cfg.replace(model=str(getattr(model, "axial_spec", "") or getattr(spec, "model", "")),
                      experts=[e.source for e in mixture.experts], source=label,
                      expert_names=mixture.expert_names, expert_weights=weights)
    # Written into a temporary folder renamed to `out` at the end: a killed export leaves no half model that
    # a rerun would refuse ("not empty") or a server would load.
    with atomic_dir(out) as tmp:
        if format == "peft":
            from axial.mixture import save_expert

            base_name = getattr(model, "name_or_path", None) or cfg.model or None
            save_expert(_combined_expert(mixture, weights, name=f"export_{label}"), tmp, base_model_name=base_name)
        else:
            deltas = mixture.delta_weights(weights)
            with mixture.detached():
                state = model.state_dict()
                ptrs = [p.data_ptr() for _, p in model.named_parameters(remove_duplicate=False)]
                tied = {n for n in deltas if ptrs.count(model.get_submodule(n).weight.data_ptr()) > 1}
                if tied:
                    raise AxialError(f"export: module(s) {sorted(tied)} share weights with another layer; "
                                     "folding an update into them would change both; use --format peft")
                for name, delta in deltas.items():
                    key = f"{name}.weight"
                    state[key] = (state[key].float() + delta.to(state[key].device)).to(state[key].dtype)
                model.save_pretrained(tmp, state_dict=state)
            if tok is not None:
                tok.save_pretrained(tmp)
        cfg.save(tmp / "axial_export.json")
    return out


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        out: str = typer.Option(..., help="output folder (must be new or empty)"),
        experts: list[str] = typer.Option(..., "--experts", help=cliopts.EXPERTS_HELP),
        source: str | None = typer.Option(None, "--source", help=SOURCE_OPTION_HELP + "; static sources only"),
        preference: str | None = typer.Option(None, "--preference", hidden=True,
                                              help="deprecated: --source pref:AXIS=W,..."),
        model: str = typer.Option("embedded", help=cliopts.MODEL_HELP),
        format: str = typer.Option("hf", help="hf: weights folded into the model | peft: one LoRA adapter"),
        axes: str | None = typer.Option(None, help="axes YAML/JSON file (default: the built-in axes)"),
        dtype: str = typer.Option("fp32", help="dtype the base is loaded and (for hf) saved in"),
    ):
        """Fold a static source (a preference, weights, one expert, uniform) into an HF model folder (zero
        overhead) or one PEFT/vLLM LoRA adapter."""
        from axial.axes import axis_names, load_axes
        from axial.variants import VariantSpec, load_variant

        if preference:
            cliopts.deprecated("--preference AXIS=W,...", "--source pref:AXIS=W,...")
            if source:
                raise AxialError("export: give --source or --preference, not both")
            source = f"pref:{preference}"
        if not source:
            raise AxialError("export: --source is required (e.g. --source pref:harmless=0.6,helpful=0.4)")
        names = axis_names(load_axes(axes))
        parsed = parse_source(source, axes=names)
        variant = load_variant(VariantSpec(model=model, experts=cliopts.experts_list(experts), source="base",
                                           dtype=dtype, device="cpu"))
        path = export(variant, parsed, out, format=format, axes=names)
        typer.echo(f"exported {format} to {path}")
