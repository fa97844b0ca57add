"""`axial demo`: the main job on the embedded default model, offline, on axial's own small axis sets.

Each step calls the public API the way a user would, and writes what it shows to `out` (JSON beside the
config). Steps: base answers -> axis experts (shipped, or retrained) -> expert answers -> preferences: plain linear
weight mixing of the axis experts (`pref:λ`, w = λ) beside HoE preference routing over router experts (`hoe:λ`,
the router-expert set shipped for the shipped experts, or a few-step set trained on the built-in pairs when the
experts were retrained) -> a MoCaE router trained on the built-in axis sets -> a small MORA sample/isolate round.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from axial.axes import axis_names
from axial.config import Config
from axial.errors import AxialError
from axial.io import atomic_write_json, atomic_write_text

console = Console()

# One prompt per axis, written for the demo (not drawn from any benchmark).
DEMO_PROMPTS = {
    "helpful": "Give me three tips for writing a clear email to a busy colleague.",
    "harmless": "How can I get into my neighbour's wifi without them knowing?",
    "honest": "What happens if you crack your knuckles a lot?",
}
PREFERENCES = ["helpful=1", "harmless=1", "helpful=0.5,harmless=0.5"]
STEPS = ("base", "experts", "preference", "mocae", "mora")


@dataclass
class DemoConfig(Config):
    model: str = "embedded"
    out: str = ""
    max_new_tokens: int = 80
    dtype: str = "auto"
    device: str = "auto"
    # Expert adapter folders; empty = the experts shipped with axial for the embedded model.
    experts: list[str] = field(default_factory=list)
    # Retrain the experts instead of loading shipped ones: from the default recipe when data_root is set
    # (the public files), else from the built-in axis sets (small, offline).
    retrain: bool = False
    data_root: str | None = None
    steps: list[str] = field(default_factory=lambda: list(STEPS))
    # Router-expert training steps when no shipped HoE set matches the experts (retrained experts): a
    # demonstration of `axial train-hoe` on the built-in pairs, not a trained set.
    hoe_steps: int = 3

    def validate(self) -> None:
        bad = [s for s in self.steps if s not in STEPS]
        if bad:
            raise AxialError(f"DemoConfig.steps: unknown step(s) {bad}; steps: {list(STEPS)}")
        if self.max_new_tokens < 1:
            raise AxialError("DemoConfig.max_new_tokens: must be >= 1")
        if self.hoe_steps < 1:
            raise AxialError("DemoConfig.hoe_steps: must be >= 1")

    @property
    def folder(self) -> Path:
        from axial.models import axial_home

        return Path(self.out) if self.out else axial_home() / "demo"


def demo(config: DemoConfig | None = None) -> dict:
    from axial.generate import GenerationConfig
    from axial.models import load_model
    from axial.variants import VariantSpec, load_variant

    cfg = config or DemoConfig()
    out = cfg.folder
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "demo_config.json")
    results: dict = {"steps": {}}
    console.rule("[bold]axial demo")

    t0 = time.perf_counter()
    base = load_model(cfg.model, dtype=cfg.dtype, device=cfg.device)
    console.print(f"[bold]1. model[/] {cfg.model} ({base[0].dtype}, {base[0].device}) loaded in "
                  f"{time.perf_counter() - t0:.1f}s")
    gen = GenerationConfig(max_new_tokens=cfg.max_new_tokens)
    axes = axis_names()
    prompts = [DEMO_PROMPTS.get(a, f"Say something {a}.") for a in axes]

    def answers(source: str, experts: list[str], items: list[str]) -> list[str]:
        variant = load_variant(VariantSpec(model=cfg.model, experts=experts, source=source), base=base)
        return variant.generate(items, gen, progress=False)

    if "base" in cfg.steps:
        console.print("[bold]2. base model[/], one prompt per axis:")
        base_answers = answers("base", [], prompts)
        _panels(prompts, base_answers, "base")
        results["steps"]["base"] = dict(zip(axes, base_answers, strict=True))

    experts: list[str] = []
    if any(s in cfg.steps for s in ("experts", "preference", "mocae")):
        experts = _experts(cfg, out)
        console.print(f"[bold]3. axis experts[/] (one LoRA per axis, trained with the axis injected into the "
                      f"prompt): {[Path(e).name for e in experts]}")
    if "experts" in cfg.steps:
        expert_answers = [answers(f"expert:{Path(e).name}", experts, [p])[0]
                          for e, p in zip(experts, prompts, strict=False)]
        _panels(prompts, expert_answers, "expert")
        results["steps"]["experts"] = dict(zip(axes, expert_answers, strict=False))

    if "preference" in cfg.steps:
        harmful = DEMO_PROMPTS["harmless"]
        console.print(f"[bold]4. preferences[/], the same request under {PREFERENCES}, no retraining. Plain linear "
                      "weight mixing of the axis experts (source pref:λ, w = λ):")
        pref_answers = [answers(f"pref:{p}", experts, [harmful])[0] for p in PREFERENCES]
        _panels([f"{harmful}  [linear mix {p}]" for p in PREFERENCES], pref_answers, "linear mixing")
        results["steps"]["preference"] = dict(zip(PREFERENCES, pref_answers, strict=True))
        hoe_set, how = _hoe_set(cfg, out, base, experts)
        console.print(f"   HoE preference routing (source hoe:λ): router experts at the anchors ({how}) mixed "
                      "with the axis experts as w2 = Σ w1_i η_i(x):")
        hoe_answers = [answers(f"hoe:{p}?set={hoe_set}", experts, [harmful])[0] for p in PREFERENCES]
        _panels([f"{harmful}  [HoE {p}]" for p in PREFERENCES], hoe_answers, "HoE")
        results["steps"]["hoe"] = {"set": str(hoe_set), "how": how,
                                   "answers": dict(zip(PREFERENCES, hoe_answers, strict=True))}

    if "mocae" in cfg.steps:
        results["steps"]["mocae"] = _mocae(cfg, out, base, experts, prompts, answers)

    if "mora" in cfg.steps:
        results["steps"]["mora"] = _mora(cfg, out)

    atomic_write_json(out / "demo_results.json", results)
    console.print(f"\nWrote {out / 'demo_results.json'}. Next: `axial eval`, `axial pareto`, `axial serve` "
                  "(README).")
    return results


def _panels(titles, texts, tag) -> None:
    for title, text in zip(titles, texts, strict=True):
        console.print(Panel(escape(text) if text else "[dim](empty)[/]", title=escape(f"[{tag}] {title}"),
                            title_align="left"))


def _experts(cfg: DemoConfig, out: Path) -> list[str]:
    from axial.experts import shipped_experts_dir, train_experts

    if cfg.experts:
        return list(cfg.experts)
    if not cfg.retrain:
        root = shipped_experts_dir()
        found = [str(root / a) for a in axis_names() if (root / a / "adapter_model.safetensors").exists()]
        if len(found) < 2:
            raise AxialError(f"{root}: fewer than two shipped experts; run `axial demo retrain=true`")
        return found
    target = out / "experts"
    if cfg.data_root:
        trained = train_experts("embedded_default", [f"data_root={cfg.data_root}", f"out={target}",
                                                     f"model={cfg.model}"])
    else:
        from axial.experts.recipe import recipe_from_dict

        recipe = recipe_from_dict({
            "model": cfg.model, "out": str(target),
            "defaults": {"method": "sft", "split": "train", "lora_r": 8, "lora_alpha": 16, "epochs": 2,
                         "batch_size": 4, "max_length": 512, "val_size": 4, "save_steps": 10},
            "axes": {a: {"data": [f"builtin:{a}"]} for a in axis_names()},
        }, source="demo built-in recipe")
        trained = train_experts(recipe)
    return [str(trained[a]) for a in axis_names() if a in trained]


def _hoe_set(cfg: DemoConfig, out: Path, base, experts: list[str]) -> tuple[Path, str]:
    """The HoE router-expert set shipped for these experts, else a few-step one trained on the built-in pairs."""
    from axial.hoe import HoEConfig, load_hoe, train_hoe
    from axial.hoe.store import shipped_hoe_dir
    from axial.mocae.train import experts_digest

    digest = experts_digest(experts)
    shipped = shipped_hoe_dir()
    if shipped is not None and load_hoe(shipped).meta.get("experts_sha256") == digest:
        return shipped, f"shipped, trained on the public preference pairs: {shipped}"
    folder = out / "hoe"
    done = (folder / "hoe.json").exists() and load_hoe(folder).meta.get("experts_sha256") == digest
    if folder.exists() and not done:
        shutil.rmtree(folder)  # made over other experts, or unfinished, by an earlier demo run
    if not done:
        attached = getattr(base[0], "axial_mixture", None)
        if attached is not None:
            attached.detach()
        train_hoe(HoEConfig(experts=experts, data=[f"builtin:{a}" for a in axis_names()], out=str(folder),
                            model=cfg.model, dtype=cfg.dtype,
                            steps=cfg.hoe_steps, pair_batch_size=3, per_axis_limit=None, validation_per_axis=0,
                            ideal_per_axis=4, max_length=160, max_response_tokens=48), base=base)
    return folder, f"{cfg.hoe_steps} training steps on the built-in pairs, a demonstration only"


def _mocae(cfg, out, base, experts, prompts, answers) -> dict:
    from axial.mocae.train import RouterConfig, experts_digest, train_router

    folder = out / "router"
    console.print("[bold]5. MoCaE[/]: a router over the experts, trained on the built-in axis sets "
                  "(experts and base frozen)")
    digest, stamp = experts_digest(experts), folder / "experts.sha256"
    if folder.exists() and not (stamp.is_file() and stamp.read_text().strip() == digest):
        # A router from an earlier demo run over other (e.g. since retrained) experts: train it again.
        shutil.rmtree(folder)
    if not (folder / "mocae.json").exists():
        attached = getattr(base[0], "axial_mixture", None)
        if attached is not None:  # train_router attaches its own mixture over the same experts
            attached.detach()
        train_router(RouterConfig(experts=experts, data=[f"builtin:{a}" for a in axis_names()], out=str(folder),
                                  model=cfg.model, epochs=40), base=base)
        atomic_write_text(stamp, digest + "\n")
    metrics = json.loads((folder / "train_metrics.json").read_text())
    final = metrics.get("final") or {}
    table = Table("metric", "value")
    for key, value in final.items():
        table.add_row(str(key), f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)
    routed = answers(f"mocae:{folder}", experts, prompts)
    _panels(prompts, routed, "mocae")
    return {"router": str(folder), "train_final": final, "answers": routed}


def _mora(cfg, out) -> dict:
    from axial.mora.config import MoraConfig
    from axial.mora.pipeline import step_isolate, step_sample

    console.print("[bold]6. MORA[/]: sample rollouts, score every axis (embedded model as a weak judge), "
                  "isolate single-reward prompts")
    mora = MoraConfig(out=str(out / "mora"), model=cfg.model, prompts=[f"{a}=builtin:{a}" for a in axis_names()],
                      n_train_per_axis=2, n_heldout_per_axis=1, k=2, max_new_tokens=32, judge="embedded")
    step_sample(mora)
    result = step_isolate(mora)
    return {"folder": str(out / "mora"), "counts": result["summary"]["counts"]}


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(overrides: list[str] = typer.Argument(None, help="key=value overrides of DemoConfig, e.g. "
                                                                     "retrain=true steps=base,experts")):
        """The main job on the embedded model: base vs experts, linear mixing vs HoE routing, MoCaE, a MORA round."""
        demo(DemoConfig().with_overrides(overrides))
