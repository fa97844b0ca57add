"""`train_hoe(HoEConfig) -> DIR`: HoE's router experts, one per anchor preference, and the anchors file that
preference routing reads.

HoE (hierarchical mixture of LoRA experts) has three levels: LoRA experts (the axis experts and, optionally,
multi-objective experts merged at anchor preferences: `axial merge-experts`), router experts, and preference
routing. A router expert at anchor λ_a is a router (axial.mocae.MoCaERouter with `allowed` experts) restricted
to the N experts nearest λ_a in preference space (axial.hoe.experts), trained so that its mixture does well on
every axis λ_a weights, in the Tchebycheff sense:

    min  max_a λ_a (L_a − z*_a)

with L_a the preference loss on axis a's pairs (the DPO-style loss of axial.mocae.objective, base model as
reference) and z*_a the ideal point: the lowest L_a any single (axis) expert reaches, measured on cached
log-probs of `ideal_per_axis` train pairs per axis.

**An offline surrogate of the paper's training.** HoE trains router experts with PPO on reward models: sample
responses from the routed model, score them, update. Here each router expert learns from fixed preference pairs
instead (the per-axis losses above), because on-policy PPO needs a generation pass and reward-model pass per
step, hours per router on the 2-core CPUs this project runs on, and reward models that are trustworthy off the
data they were trained on, which the harmless and helpful ones are not yet. The scalarisation (Tchebycheff with
z* from the single experts) and the restriction to the N nearest experts are the paper's.

Preference routing then mixes the router experts and the fixed-weight experts exactly as HoE's
w2 = Σ_i w1_i η_i(x): DIR/anchors.json lists the axis experts (one-hot η) at the vertices, the router experts
(η = their routing) at their anchors, and merged experts without a router at the same preference (one-hot η);
a user's λ takes convex weights w1 over the nearest anchors (axial.preference.routing). Use it as the weight
source `hoe:AXIS=W,...?set=DIR` (axial.sources) with the mixture's experts in the set's order (DIR/hoe.json).

Every router expert checkpoints while it trains and a finished one is skipped on a rerun, so a killed run
resumes with the same command.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from axial.config import Config
from axial.errors import AxialError
from axial.hoe.store import HOE_META
from axial.io import atomic_write_json

ANCHORS = "anchors.json"


@dataclass
class HoEConfig(Config):
    experts: list[str] = field(default_factory=list)  # axis experts (+ merged experts with a 'preference')
    data: list[str] = field(default_factory=list)  # pair sources, AXIS=PATH or builtin:AXIS (axial.mocae.pairs)
    out: str = ""
    model: str = "embedded"
    dtype: str = "bf16"
    # Anchor preferences of the router experts ("helpful=0.5,harmless=0.5" ...); empty = the edge midpoints and
    # the centre of the axes' simplex.
    anchors: list[str] = field(default_factory=list)
    n_nearest: int = 2  # experts each router expert routes over (ties with the N-th nearest kept)
    granularity: str = "sequence"
    scope: str = "per_layer"
    arch: str = "linear"
    mlp_hidden: int = 64
    steps: int = 100  # optimizer steps per router expert
    pair_batch_size: int = 6  # pairs per step, spread over the anchor's axes (those with λ > 0)
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    beta: float = 0.1
    tchebycheff_smoothing: float = 0.0  # 0 = the plain max; μ > 0: μ·logsumexp(terms / μ)
    ideal_per_axis: int = 40  # train pairs per axis each single expert is scored on for z*
    per_axis_limit: int | None = 100  # prompts per axis
    pairs_per_prompt: int = 2
    heldout_fraction: float = 0.3
    max_length: int = 192
    max_response_tokens: int = 64
    forward_batch_size: int = 8
    checkpoint_every: int = 10
    validation_per_axis: int = 20  # held-out pairs per axis each router expert is scored on (0 = none)
    reference_cache: str = ""  # default: OUT/reference_logps.safetensors
    seed: int = 0
    overwrite: bool = False

    def validate(self) -> None:
        from axial.mocae.router import ARCHS, GRANULARITIES, SCOPES

        for name, allowed in (("granularity", GRANULARITIES), ("scope", SCOPES), ("arch", ARCHS),
                              ("dtype", ("auto", "bf16", "fp32"))):
            if getattr(self, name) not in allowed:
                raise AxialError(f"HoEConfig.{name}: must be one of {list(allowed)}, got '{getattr(self, name)}'")
        for name in ("n_nearest", "steps", "pair_batch_size", "pairs_per_prompt", "max_length",
                     "max_response_tokens", "forward_batch_size", "checkpoint_every", "mlp_hidden"):
            if getattr(self, name) < 1:
                raise AxialError(f"HoEConfig.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("ideal_per_axis", "validation_per_axis"):
            if getattr(self, name) < 0:
                raise AxialError(f"HoEConfig.{name}: must be >= 0, got {getattr(self, name)}")
        if self.ideal_per_axis < 1:
            raise AxialError("HoEConfig.ideal_per_axis: must be >= 1 (z* is measured on these pairs)")
        if self.max_response_tokens >= self.max_length:
            raise AxialError(f"HoEConfig.max_response_tokens ({self.max_response_tokens}) must be below max_length "
                             f"({self.max_length})")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise AxialError(f"HoEConfig.heldout_fraction: must be in (0, 1), got {self.heldout_fraction}")
        if self.per_axis_limit is not None and self.per_axis_limit < 1:
            raise AxialError(f"HoEConfig.per_axis_limit: must be >= 1, got {self.per_axis_limit}")
        for name in ("beta", "learning_rate"):
            if not getattr(self, name) > 0:
                raise AxialError(f"HoEConfig.{name}: must be > 0, got {getattr(self, name)}")
        if self.tchebycheff_smoothing < 0 or self.weight_decay < 0:
            raise AxialError("HoEConfig.tchebycheff_smoothing and weight_decay: must be >= 0")


def train_hoe(cfg: HoEConfig, *, base=None) -> Path:
    """Train the router experts and write DIR (see the module docstring); `base=(model, tokenizer)` reuses a
    loaded base model. Returns DIR."""
    from axial.baseref import base_reference
    from axial.distributed import world
    from axial.hoe.experts import anchor_name, default_anchor_preferences, expert_positions, nearest_experts
    from axial.mixture import GateConfig
    from axial.mixture.resolved import Routed, Static
    from axial.mocae import objective as obj
    from axial.mocae.pairs import preference_pairs, source_axis
    from axial.mocae.router import MoCaERouter
    from axial.mocae.store import META, save_router
    from axial.mocae.train import decoder_layers, load_base_and_mixture, reference_settings
    from axial.preference.preference import parse_preference

    if world()[1] > 1:
        raise AxialError(f"train-hoe runs in one process ({world()[1]} were launched): its "
                         "data-parallel path is not built yet; run it without torchrun/accelerate")
    if len(cfg.experts) < 2:
        raise AxialError(f"HoEConfig.experts: at least two expert adapter folders are needed, got {cfg.experts}")
    if not cfg.data:
        raise AxialError("HoEConfig.data: pair sources are needed (e.g. harmless=hh-rlhf/harmless-base_test_dev.jsonl)")
    if not cfg.out:
        raise AxialError("HoEConfig.out: required (output folder)")
    out = Path(cfg.out)
    if (out / HOE_META).exists() and not cfg.overwrite:
        raise AxialError(f"{out} already holds a HoE set; pass overwrite=true to replace it")
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "hoe_config.json")
    t0 = time.time()
    model, tok, mixture = load_base_and_mixture(cfg.model, cfg.dtype, cfg.experts, base)
    torch.manual_seed(cfg.seed)
    try:
        names = mixture.expert_names
        axes = list(dict.fromkeys(source_axis(s) for s in cfg.data))
        positions = expert_positions(mixture.experts, axes)
        single = [n for n in names if n in axes]
        missing = [a for a in axes if a not in single]
        if missing:
            raise AxialError(f"HoEConfig: axis/axes {missing} have pairs but no axis expert among {names}")
        anchors = ([parse_preference(a, axes) for a in cfg.anchors] if cfg.anchors
                   else default_anchor_preferences(axes))
        pair_set = preference_pairs(cfg.data, axes, "train", heldout_fraction=cfg.heldout_fraction,
                                    per_axis_limit=cfg.per_axis_limit, pairs_per_prompt=cfg.pairs_per_prompt,
                                    seed=cfg.seed)
        pairs = pair_set.pairs
        prompt_tokens = cfg.max_length - cfg.max_response_tokens
        enc = {"max_prompt_tokens": prompt_tokens, "max_response_tokens": cfg.max_response_tokens}
        settings = reference_settings(cfg.model, cfg.dtype, prompt_tokens, cfg.max_response_tokens, cfg.experts)
        cache = obj.ReferenceCache(cfg.reference_cache or out / "reference_logps.safetensors", settings)
        cache.fill(model, tok, mixture, pairs, [obj.BASE], batch_size=cfg.forward_batch_size, **enc)
        probe = obj.per_axis_subset(pairs, axes, cfg.ideal_per_axis, cfg.seed)
        cache.fill(model, tok, mixture, probe, single, batch_size=cfg.forward_batch_size,
                   desc="single experts' log-probs (z*)", **enc)
        table = obj.expert_dpo_losses(cache, probe, single, axes, cfg.beta)
        ideal = {a: min(table[a].values()) for a in axes}
        ideal_by = {a: min(table[a], key=table[a].get) for a in axes}
        reference = cache.table(pairs, obj.BASE)
        axis_ids = [axes.index(p.axis) for p in pairs]
        held = []
        if cfg.validation_per_axis:
            held = preference_pairs(cfg.data, axes, "heldout", heldout_fraction=cfg.heldout_fraction,
                                    per_axis_limit=cfg.validation_per_axis, pairs_per_prompt=1, seed=cfg.seed).pairs
            cache.fill(model, tok, mixture, held, [obj.BASE], batch_size=cfg.forward_batch_size,
                       desc="held-out reference", **enc)
        common = {k: v for k, v in cfg.to_dict().items()
                  if k not in ("out", "overwrite", "forward_batch_size", "reference_cache", "checkpoint_every",
                               "validation_per_axis", "anchors")}

        experts_done = []
        for anchor in anchors:
            name = anchor_name(anchor)
            folder = out / "routers" / name
            allowed = nearest_experts(anchor, positions, cfg.n_nearest)
            active = [i for i, a in enumerate(axes) if anchor.as_dict().get(a, 0.0) > 0]
            fingerprint = obj.run_fingerprint({**common, "anchor": anchor.as_dict(), "allowed": allowed}, pairs,
                                              settings["experts"])
            if (folder / META).is_file() and json.loads((folder / META).read_text()).get("hoe", {}).get(
                    "fingerprint") == fingerprint:
                experts_done.append(json.loads((folder / "train_metrics.json").read_text()))
                continue
            router = MoCaERouter(model.config.hidden_size, names, len(decoder_layers(model)), scope=cfg.scope,
                                 granularity=cfg.granularity, arch=cfg.arch, mlp_hidden=cfg.mlp_hidden,
                                 allowed=allowed)
            obj.uniform_start(router)  # uniform over the allowed experts
            gate = GateConfig()
            weights = [anchor.as_dict().get(a, 0.0) for a in axes]
            objective = obj.PreferenceObjective(
                model, mixture, router, gate, beta=cfg.beta, num_axes=len(axes),
                scalarise=obj.tchebycheff_scalarise(weights, [ideal[a] for a in axes], cfg.tchebycheff_smoothing))
            folder.mkdir(parents=True, exist_ok=True)
            checkpoint = folder / "checkpoint.safetensors"
            if checkpoint.is_file() and not obj.checkpoint_matches(checkpoint, fingerprint):
                if not cfg.overwrite:
                    raise AxialError(f"{checkpoint}: a checkpoint of other settings; pass overwrite=true to start over")
                checkpoint.unlink()
            t1 = time.time()
            history = obj.fit_preference(
                objective, pairs, tok,
                batches=obj.StratifiedBatches(axis_ids, obj.per_axis_split(cfg.pair_batch_size, active), cfg.seed),
                reference=reference, axis_ids=axis_ids, labels=None, steps=cfg.steps,
                learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, checkpoint=checkpoint,
                checkpoint_every=cfg.checkpoint_every, fingerprint=fingerprint, desc=f"router expert {name}", **enc)
            metrics: dict = {"anchor": anchor.as_dict(), "name": name, "allowed": allowed,
                             "axes": [axes[i] for i in active], "train_seconds": round(time.time() - t1, 1),
                             "final": history[-1], "history": history}
            if held:
                sub = [p for p in held if anchor.as_dict().get(p.axis, 0.0) > 0]
                sub_ref = cache.table(sub, obj.BASE)
                linear = Static([anchor.as_dict().get(n, 0.0) for n in names])
                uniform_allowed = Static([1.0 / len(allowed) if n in allowed else 0.0 for n in names])
                scores = {label: obj.pair_scores(model, tok, mixture, sub, sub_ref, src, beta=cfg.beta,
                                                 batch_size=cfg.forward_batch_size, desc=f"held-out: {label}", **enc)
                          for label, src in (("router_expert", Routed(router, gate)), ("linear", linear),
                                             ("uniform_over_allowed", uniform_allowed))}
                summary = obj.summarise_pair_scores(scores, sub, [axes[i] for i in active], reference_label="linear")
                metrics["heldout"] = {"pairs": {axes[i]: sum(p.axis == axes[i] for p in sub) for i in active},
                                      "scores": summary,
                                      "tchebycheff": {label: _tchebycheff_value(summary[label], anchor, ideal)
                                                      for label in summary}}
            atomic_write_json(folder / "train_metrics.json", metrics)
            obj.plot_history(history, axes, folder / "training.png", title=f"router expert {name} (Tchebycheff)")
            # mocae.json last: it marks a finished router expert (a rerun skips it).
            save_router(router, folder, expert_dirs=cfg.experts, base_model=cfg.model, top_k=0, importance=None,
                        extra={"hoe": {"anchor": anchor.as_dict(), "allowed": allowed, "ideal": ideal,
                                       "fingerprint": fingerprint}, "base": base_reference(model)})
            checkpoint.unlink(missing_ok=True)
            experts_done.append(metrics)
    finally:
        mixture.detach()

    anchors_file = write_anchors(out, names, axes, positions, [(m["anchor"], f"routers/{m['name']}")
                                                               for m in experts_done])
    meta = {"axes": axes, "experts": names, "expert_dirs": [str(Path(d).resolve()) for d in cfg.experts],
            "experts_sha256": settings["experts"],
            "positions": {n: p.as_dict() for n, p in positions.items()}, "anchors_file": anchors_file.name,
            "ideal": ideal, "ideal_expert": ideal_by,
            "expert_dpo_loss_on_train_pairs": {"pairs": {a: sum(p.axis == a for p in probe) for a in axes},
                                               "loss": table},
            "pairs": pair_set.describe(), "router_experts": [
                {k: m[k] for k in ("name", "anchor", "allowed", "axes", "train_seconds", "final")}
                | ({"heldout_tchebycheff": m["heldout"]["tchebycheff"]} if "heldout" in m else {})
                for m in experts_done],
            "total_seconds": round(time.time() - t0, 1),
            "surrogate": "router experts trained offline on preference pairs (Tchebycheff over per-axis DPO-style "
                         "losses), not with PPO as in the HoE paper"}
    atomic_write_json(out / HOE_META, meta)  # last: marks a finished set
    return out


def _tchebycheff_value(summary: dict, anchor, ideal: dict) -> float:
    lam = anchor.as_dict()
    return max(lam[a] * (cell["dpo_loss"]["value"] - ideal[a]) for a, cell in summary.items() if lam.get(a, 0) > 0)


def write_anchors(out: Path, names: list[str], axes: list[str], positions: dict, routers: list[tuple[dict, str]]) -> Path:
    """DIR/anchors.json for axial.preference.routing.load_anchors: the router experts at their anchors, and every
    expert with a place in preference space (axis experts at the vertices, merged experts at their preference)
    whose preference no router expert occupies, with one-hot weights. Router paths are relative to DIR."""
    taken = {tuple(round(v, 9) for v in _vector(p, axes)) for p, _ in routers}
    items = []
    for name, pos in positions.items():
        if tuple(round(v, 9) for v in pos.vector(axes)) in taken:
            continue
        items.append({"name": name, "preference": pos.as_dict(),
                      "weights": [1.0 if n == name else 0.0 for n in names]})
    for pref, rel in routers:
        items.append({"name": Path(rel).name, "preference": pref, "router": rel})
    path = out / ANCHORS
    atomic_write_json(path, {"anchors": items})
    return path


def _vector(pref: dict, axes: list[str]) -> list[float]:
    return [float(pref.get(a, 0.0)) for a in axes]
