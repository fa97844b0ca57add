"""`calibrate(CalibrateConfig)`: fit the router's calibration on held-out prompts and report it honestly.

The router's held-out prompts (axial.mocae.data; for a router trained with objective=preference, the prompts of
its held-out preference pairs, labelled with the pair's axis, axial.mocae.pairs) are split in two halves: the calibrator is fitted on the
`calibration` half and every reported number comes from the `report` half, so neither training nor fitting
data is scored. Prompts whose key is among the router's training prompts (DIR/train_keys.json) are refused:
that can only happen when different data sources are passed than at training, and the report counts them.

The routing decisions scored are the ones the model makes at inference: the prompt runs through the mixture
with the router driving it (uncalibrated, with its top-k / γ gate), and each layer's logits are recorded.
The fitted calibrator (temperature scaling; see axial.mocae.calibration for why the "natural" and "fractal"
interpretations were dropped) is saved to DIR/calibration.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from axial.config import Config
from axial.errors import AxialError, DataError
from axial.io import atomic_write_json, atomic_write_text
from axial.mixture.resolved import Static
from axial.mocae.calibration import (
    METHODS,
    calibration_metrics,
    make_calibrator,
    reliability_diagram,
)
from axial.mocae.data import routing_examples
from axial.mocae.pairs import pair_routing_examples
from axial.mocae.store import CALIBRATION, TRAIN_KEYS, key_hash, load_router
from axial.mocae.train import RouterConfig, encode_prompts, load_base_and_mixture


@dataclass
class CalibrateConfig(Config):
    router: str = ""
    data: list[str] = field(default_factory=list)  # default: the router's training sources
    out: str = ""  # default: DIR/calibration
    method: str = "temperature"
    dtype: str = "bf16"
    per_axis_limit: int | None = None  # default: the router's
    forward_batch_size: int = 8
    resamples: int = 1000
    seed: int = 0
    # Whether the router routes with the fitted calibrator from now on (DIR/calibration.json "apply"). None:
    # yes for a source-label router (its softmax predicts the axis, which calibration sharpens or softens),
    # no for a preference-trained one: its routing is what lowered the preference loss, not an axis prediction,
    # and a temperature fitted to axis labels can flatten it into the uniform merge. The report is written
    # either way; `mocae:DIR?calibration=fitted|none` overrides at load time.
    apply: bool | None = None

    def validate(self) -> None:
        if not self.router:
            raise AxialError("CalibrateConfig.router: required (a folder made by `axial train-router`)")
        if self.method not in METHODS:
            raise AxialError(f"CalibrateConfig.method: must be one of {list(METHODS)}, got '{self.method}'")
        if self.forward_batch_size < 1 or self.resamples < 1:
            raise AxialError("CalibrateConfig.forward_batch_size and resamples: must be >= 1")


def routing_logits(model, tok, mixture, loaded, examples, *, max_length: int, batch_size: int,
                   desc: str = "routing") -> dict[str, np.ndarray]:
    """Every routing decision the mixture makes on the prompts: logits [R, K], labels, groups (example)."""
    from tqdm.auto import tqdm

    router = loaded.router
    saved_calibrator = router.calibrator
    router.calibrator = make_calibrator("none")
    loaded.attach(mixture)
    device = next(model.parameters()).device
    rows: dict[str, list] = {"logits": [], "labels": [], "groups": []}
    try:
        with torch.no_grad():
            for start in tqdm(range(0, len(examples), batch_size), desc=desc, unit="batch"):
                batch = examples[start: start + batch_size]
                enc = encode_prompts(tok, batch, max_length).to(device)
                with router.recording() as rec:
                    model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], use_cache=False,
                          logits_to_keep=1)
                # Only blocks with expert modules are routed (all of them for full-model adapters).
                z = torch.stack([rec[i] for i in sorted(rec)], dim=2).float().cpu()  # [B, T, L, K]
                num_layers = z.shape[2]
                mask = enc["attention_mask"].bool().cpu()
                for b, e in enumerate(batch):
                    per = z[b, -1:] if router.granularity == "sequence" else z[b][mask[b]]  # [T', L, K]
                    t = per.shape[0]
                    rows["logits"].append(per.reshape(-1, per.shape[-1]).numpy())
                    rows["labels"].append(np.full(t * num_layers, e.label))
                    rows["groups"].append(np.full(t * num_layers, start + b))
    finally:
        mixture.use(Static(None))
        router.calibrator = saved_calibrator
    return {k: np.concatenate(v) for k, v in rows.items()}


def _example_accuracy(probs: np.ndarray, data: dict[str, np.ndarray], names: list[str]) -> dict:
    """Accuracy of one decision per example (argmax of its mean routing probability), overall and per axis."""
    from axial.stats import bootstrap_ci

    groups = data["groups"]
    uniq = np.unique(groups)
    mean_p = np.stack([probs[groups == g].mean(0) for g in uniq])
    labels = np.array([data["labels"][groups == g][0] for g in uniq])
    correct = (mean_p.argmax(1) == labels).astype(float)
    out = {"all": bootstrap_ci(correct)}
    for i, name in enumerate(names):
        out[name] = bootstrap_ci(correct[labels == i])
    return out


def _fmt(m: dict) -> str:
    return f"{m['value']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"


def _train_keys(folder: Path) -> set[str]:
    """The router's training prompts (hashed). Without them nothing could stop calibrating or reporting on
    prompts the router was trained on, so a missing or unreadable file is an error, not an empty set."""
    path = folder / TRAIN_KEYS
    if not path.is_file():
        raise AxialError(f"{path}: missing, so the router's training prompts are unknown and the calibration "
                         "data cannot be checked against them; the router folder is incomplete (train_router "
                         "was interrupted, or the file was not copied): retrain it with `axial train-router`")
    try:
        keys = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", path=str(path), line=e.lineno) from None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise DataError("expected a JSON list of sha256 hex strings", path=str(path))
    return set(keys)


def calibrate(cfg: CalibrateConfig, *, base=None) -> dict:
    """Fit and save DIR/calibration.json; write report JSON / MD / PNG under `out`; return the report."""
    from axial.mixture import Mixture

    t0 = time.time()
    folder = Path(cfg.router)
    loaded = load_router(folder, calibration="none")
    rcfg = RouterConfig.load(folder / "router_config.json")
    names = loaded.expert_names
    sources = cfg.data or rcfg.data
    limit = cfg.per_axis_limit if cfg.per_axis_limit is not None else rcfg.per_axis_limit
    train_keys = _train_keys(folder)
    parts, refused = {}, {}
    # A preference-trained router serves each axis' pairs: it is calibrated against the axis of the held-out pairs'
    # prompts (the same sources and held-out split as its training pairs).
    make_examples = pair_routing_examples if rcfg.objective == "preference" else routing_examples
    for part in ("calibration", "report"):
        examples = make_examples(sources, names, part, heldout_fraction=rcfg.heldout_fraction,
                                 per_axis_limit=limit, seed=rcfg.seed)
        kept = [e for e in examples if key_hash(e.key) not in train_keys]
        refused[part] = len(examples) - len(kept)
        if not kept:
            raise AxialError(f"calibrate: every {part} prompt was used to train the router; pass other --data")
        parts[part] = kept
    out = Path(cfg.out) if cfg.out else folder / "calibration"
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "calibrate_config.json")

    if base is None:
        model, tok, mixture = load_base_and_mixture(loaded.base_model, cfg.dtype, loaded.expert_dirs)
    else:
        model, tok = base
        mixture = Mixture.attach(model, loaded.expert_dirs)
    try:
        data = {part: routing_logits(model, tok, mixture, loaded, examples, max_length=rcfg.max_length,
                                     batch_size=cfg.forward_batch_size, desc=f"routing ({part})")
                for part, examples in parts.items()}
    finally:
        mixture.detach()
        loaded.router.unbind()

    fit, rep = data["calibration"], data["report"]
    calibrator = make_calibrator(cfg.method).fit(fit["logits"], fit["labels"])
    before = make_calibrator("none").apply(rep["logits"])
    after = calibrator.apply(rep["logits"])
    metrics = {"before": calibration_metrics(before, rep["labels"], rep["groups"], resamples=cfg.resamples,
                                             seed=cfg.seed),
               "after": calibration_metrics(after, rep["labels"], rep["groups"], resamples=cfg.resamples,
                                            seed=cfg.seed)}
    report = {
        "router": str(folder), "method": cfg.method, "calibrator": calibrator.to_dict(),
        "experts": names, "granularity": loaded.router.granularity, "scope": loaded.router.scope,
        "examples": {p: {n: sum(e.axis == n for e in parts[p]) for n in names} for p in parts},
        "refused_training_prompts": refused,
        "decision_metrics": metrics,
        "example_accuracy": {"before": _example_accuracy(before, rep, names),
                             "after": _example_accuracy(after, rep, names)},
        "seconds": round(time.time() - t0, 1),
    }
    reliability_diagram({"uncalibrated": (before, rep["labels"]), f"{cfg.method}": (after, rep["labels"])},
                        out / "reliability.png", title=f"router {folder.name}: held-out report half")
    atomic_write_text(out / "calibration_report.md", _markdown(report))
    atomic_write_json(out / "calibration_report.json", report)
    # Last: calibration.json changes how the router routes, so it appears only with its report beside it.
    apply = cfg.apply if cfg.apply is not None else rcfg.objective != "preference"
    report["applied_by_default"] = apply
    atomic_write_json(folder / CALIBRATION, {"calibrator": calibrator.to_dict(), "report": str(out), "apply": apply})
    return report


def _markdown(r: dict) -> str:
    m = r["decision_metrics"]
    n_rep = sum(r["examples"]["report"].values())
    lines = [f"# Router calibration: {r['router']}", "",
             f"Method saved: **{r['method']}** ({json.dumps(r['calibrator'])}); "
             + ("the router routes with it by default." if r.get("applied_by_default", True) else
                "NOT applied by default (a preference-trained router: its routing is not an axis prediction; "
                "load with `?calibration=fitted` to route with it)."),
             f"Routing: {r['granularity']}, {r['scope']}. Experts: {', '.join(r['experts'])}.",
             f"Calibration fitted on {sum(r['examples']['calibration'].values())} held-out prompts "
             f"({r['examples']['calibration']}); everything below is on the other {n_rep} held-out prompts "
             f"({r['examples']['report']}). Prompts refused as router-training data: "
             f"{r['refused_training_prompts']}.",
             f"Metrics are over routing decisions (one per layer{' and token' if r['granularity'] == 'token' else ''}"
             f", {m['after']['rows']} rows); 95% CIs by bootstrap over prompts (n = {m['after']['ece']['n']}).", "",
             "| metric | uncalibrated | calibrated |", "|---|---|---|"]
    for name in ("accuracy", "ece", "brier", "nll"):
        lines.append(f"| {name} | {_fmt(m['before'][name])} | {_fmt(m['after'][name])} |")
    ex = r["example_accuracy"]["after"]
    lines += ["", "Per-prompt routing accuracy (argmax of the mean calibrated routing probability over layers):", "",
              "| axis | accuracy [95% CI] | n |", "|---|---|---|"]
    for name, v in ex.items():
        lines.append(f"| {name} | {_fmt(v)} | {v['n']} |")
    lines += ["", "![reliability](reliability.png)", ""]
    return "\n".join(lines)
