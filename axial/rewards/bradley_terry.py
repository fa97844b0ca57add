"""Bradley-Terry reward models trained by axial: a linear head on a frozen encoder's pooled hidden state.

Why hand-written rather than TRL's RewardTrainer: RewardTrainer fine-tunes the whole model (or a LoRA) with a
forward pass per step; a frozen encoder with cached features trains in seconds on a CPU, which is what lets us
choose the layer and pooling by cross-validation on train honestly (TRL has no feature-probe mode).

Model: r(x) = w . standardise(h_layer,pool(x)). Loss: -log sigmoid(r(chosen) - r(rejected)) + wd * |w|^2,
full-batch L-BFGS (convex, so the fit is deterministic). The bias cancels in every BT difference, so the head has
none; the calibration below supplies one.

Calibration (what `score()` returns): a logistic fit P(good | r) = sigmoid(a * r + b) on the TRAIN split's
responses, with every chosen response labelled 1 and every rejected one 0. Its limits, stated honestly:
HH-RLHF labels are *relative* ("less harmful of two"), so P(safe) means "probability a crowdworker would call
this the safer side of a pair", not an absolute harm rate; a chosen response can itself be harmful. For
TruthfulQA the labels are absolute (correct vs incorrect reference answers), so P(true) is closer to what it
says, but it is fitted on short reference answers and will be less calibrated on long generations.
`compare()` uses the raw BT difference sigmoid(r_a - r_b), the quantity the head was trained on.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axial.config import Config
from axial.data.records import Message
from axial.errors import AxialError
from axial.io import atomic_output, atomic_write_json
from axial.rewards.base import Judge, _check_lengths
from axial.rewards.features import POOLINGS, Encoder, Item, cached_features
from axial.rewards.pairs import Pair, load_pairs

LENGTH_MODES = ("free", "explicit", "removed", "balanced")
CRITERIA = ("loss", "balanced_loss")
HEAD_FILE = "reward_head.safetensors"
CONFIG_FILE = "reward_config.json"
# Hashes of the normalised training prompts: `axial validate-judge` refuses data that overlaps them.
PROMPTS_FILE = "train_prompts.json"
VALIDATION_FILE = "validation.json"


def prompt_hash(text: str) -> str:
    """sha256 of the prompt as the hash split normalises it (axial.data.splits), first 16 hex digits."""
    from axial.data.splits import normalise_text

    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def encoder_identity(spec: str) -> dict[str, Any]:
    """name / sha256 / size of an encoder given as a local file (a GGUF); empty for folders and hub ids."""
    path = Path(spec).expanduser()
    if not path.is_file():
        return {}
    return {"encoder_name": path.name, "encoder_sha256": file_sha256(path), "encoder_bytes": path.stat().st_size}


def resolve_encoder(config: RewardConfig, judge_dir: Path | None = None) -> str:
    """The encoder spec to load for a trained head: the recorded path when it holds the recorded file, else a
    file of the same name and sha256 under $AXIAL_MODELS (os.pathsep-separated folders), $AXIAL_HOME/models or
    the judge's folder. A clear error names the file, its sha256 and where to get it otherwise."""
    import os

    from axial.models import axial_home

    if not config.encoder_sha256:
        return config.encoder
    recorded = Path(config.encoder).expanduser()
    folders = [Path(p) for p in os.environ.get("AXIAL_MODELS", "").split(os.pathsep) if p]
    folders += [axial_home() / "models"] + ([judge_dir] if judge_dir else [])
    candidates = [recorded] + [f / config.encoder_name for f in folders]
    for c in candidates:
        if c.is_file() and c.stat().st_size == config.encoder_bytes and _sha_matches(c, config.encoder_sha256):
            return str(c)
    where = config.encoder_source or "its source is not recorded"
    raise AxialError(f"reward model needs the encoder file {config.encoder_name} ({config.encoder_bytes:,} bytes, "
                     f"sha256 {config.encoder_sha256}); none found at {', '.join(str(c) for c in candidates)}. "
                     f"Put a copy in a folder named by $AXIAL_MODELS or in {axial_home() / 'models'} ({where})")


def _sha_matches(path: Path, sha256: str) -> bool:
    # Hashing a 0.5 GB file takes seconds; remember a verified (path, size, mtime) for the process.
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = file_sha256(path)
    return _VERIFIED[key] == sha256


_VERIFIED: dict[tuple, str] = {}


@dataclass
class RewardConfig(Config):
    """How a reward model was (or will be) trained; saved as reward_config.json beside the head."""

    axis: str = "harmless"
    data: str = ""  # a data source spec (see axial.rewards.pairs)
    out: str = ""
    encoder: str = "embedded"
    dtype: str = "bf16"
    max_length: int = 512
    max_response_tokens: int = 256
    batch_size: int = 8
    # "auto" = choose by cross-validation on the train split; or fix one value.
    pooling: str = "auto"
    layer: int | None = None
    # Layers tried when `layer` is None; empty = about 8 evenly spaced layers of the encoder.
    candidate_layers: list[int] = field(default_factory=list)
    weight_decays: list[float] = field(default_factory=lambda: [1e-3, 1e-2, 1e-1, 1.0, 10.0])
    weight_decay: float | None = None
    # How the head treats response length, which GPT-4 and people both reward (so a head can score well by
    # measuring it, and the encoder's features encode it). "free": plain BT on the features. "explicit": the
    # features are first residualised on a cubic in standardised log(1 + characters) (fitted on the train
    # items, no labels), so the feature weights cannot linearly track length, and an explicit length term is
    # fitted beside them and scored: the length effect is one reported number. "removed": fitted like
    # "explicit", scored WITHOUT the length term: a length-controlled judge. "balanced": plain BT on pairs
    # reweighted so that "the longer response wins" is right on exactly half the training weight.
    # A list = choose by CV on train with `criterion`.
    length_modes: list[str] = field(default_factory=lambda: ["free"])
    # CV criterion: "loss" = BT log-loss on all held-out pairs; "balanced_loss" = on the held-out pairs whose
    # lengths are within 20% of each other (where length cannot carry the judgement).
    criterion: str = "loss"
    # k-fold CV over prompt groups of the train split: with a few hundred pairs one 20% dev part (~100 pairs)
    # is too noisy to pick among dozens of settings (it picked a setting 15 points better on dev than on test).
    folds: int = 5
    split: str = "train"
    limit: int | None = None  # a deterministic subset of this many train prompts
    # At most this many pairs per train prompt (AlpacaEval's GPT-4 file has 53 per instruction; a CPU
    # featurises a fraction). A seeded hash of the pair's texts picks them, so a larger value gives a superset.
    max_pairs_per_prompt: int | None = None
    max_test_pairs_per_prompt: int | None = None
    seed: int = 0
    cache_dir: str | None = None  # default $AXIAL_HOME/reward_features
    # The encoder's identity when `encoder` is a file (a GGUF): filled by training, checked on load, so the judge
    # resolves on another machine from a copy of the same file (see `resolve_encoder`). The file itself is not
    # part of the judge's folder. `encoder_source` says where to get it (free text, set by whoever trains).
    encoder_name: str = ""
    encoder_sha256: str = ""
    encoder_bytes: int = 0
    encoder_source: str = ""
    # Filled by training: chosen settings, sizes and held-out metrics (each with n and a 95% CI).
    n_train: int = 0
    metrics: dict = field(default_factory=dict)

    def validate(self) -> None:
        from axial.axes import axis_names

        if self.axis not in axis_names():
            raise AxialError(f"RewardConfig.axis: unknown axis '{self.axis}'; known: {axis_names()}")
        if self.pooling not in ("auto", *POOLINGS):
            raise AxialError(f"RewardConfig.pooling: use auto, {', '.join(POOLINGS)}; got '{self.pooling}'")
        if self.split != "train":
            raise AxialError(f"RewardConfig.split: reward models train on split=train only, got '{self.split}'")
        bad = [m for m in self.length_modes if m not in LENGTH_MODES]
        if bad or not self.length_modes:
            raise AxialError(f"RewardConfig.length_modes: use one or more of {', '.join(LENGTH_MODES)}; got "
                             f"{self.length_modes}")
        if self.criterion not in CRITERIA:
            raise AxialError(f"RewardConfig.criterion: use one of {', '.join(CRITERIA)}; got '{self.criterion}'")
        if self.folds < 2:
            raise AxialError(f"RewardConfig.folds: need at least 2 cross-validation folds, got {self.folds}")
        if not self.weight_decays or any(w < 0 for w in self.weight_decays):
            raise AxialError(f"RewardConfig.weight_decays: need non-negative values, got {self.weight_decays}")
        if self.limit is not None and self.limit < 2:
            raise AxialError(f"RewardConfig.limit: need at least 2 prompts, got {self.limit}")
        for name in ("max_pairs_per_prompt", "max_test_pairs_per_prompt"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise AxialError(f"RewardConfig.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("max_length", "max_response_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise AxialError(f"RewardConfig.{name}: must be >= 1, got {getattr(self, name)}")


@dataclass
class Head:
    layer: int
    pooling: str
    weight: Any  # torch [hidden]
    mean: Any
    std: Any
    calib_a: float = 1.0
    calib_b: float = 0.0
    length_mode: str = "free"
    # "explicit" / "removed": the LengthBasis (mu, sigma); the residualisation matrix [4, hidden] (features
    # minus what 1, z, z^2, z^3 predict); and the explicit length terms [3, 3]: rows z, z^2, z^3, columns
    # (weight, mean, std) as fitted beside the standardised features.
    basis: tuple[float, float] = (0.0, 1.0)
    residual: Any = None
    length_terms: Any = None

    @property
    def key(self) -> str:
        return f"{self.pooling}.{self.layer}"

    def length_reward(self, lengths) -> Any:
        """The explicit length terms' contribution (what "removed" leaves out and "explicit" adds)."""
        z = LengthBasis(*self.basis).matrix(lengths)[:, 1:]
        t = self.length_terms
        return ((z - t[:, 1]) / t[:, 2]) @ t[:, 0]

    def reward(self, feats, lengths=None) -> Any:
        """Rewards for feature rows; `lengths` (characters per row) is needed by the length-aware modes."""
        if self.residual is not None:
            if lengths is None:
                raise AxialError(f"reward head (length mode {self.length_mode}): response lengths are needed")
            feats = feats - LengthBasis(*self.basis).matrix(lengths) @ self.residual
        r = ((feats - self.mean) / self.std) @ self.weight
        if self.length_mode == "explicit":
            r = r + self.length_reward(lengths)
        return r

    def prob(self, rewards) -> Any:
        import torch

        # float64: a saturated float32 sigmoid would turn clear wins into ties in validation.
        return torch.sigmoid(self.calib_a * rewards.double() + self.calib_b)


def log_length(lengths) -> Any:
    import torch

    return torch.log1p(torch.as_tensor(lengths, dtype=torch.float64))


@dataclass
class LengthBasis:
    """z = standardised log(1 + characters) of a response, and the cubic basis [1, z, z^2, z^3] that features
    are residualised on (a linear head on the residuals cannot track length through them)."""

    mu: float
    sigma: float

    @classmethod
    def fit(cls, lengths) -> LengthBasis:
        ll = log_length(lengths)
        return cls(float(ll.mean()), float(ll.std().clamp_min(1e-6)) if len(ll) > 1 else 1.0)

    def z(self, lengths) -> Any:
        return ((log_length(lengths) - self.mu) / self.sigma).float()

    def matrix(self, lengths) -> Any:
        import torch

        z = self.z(lengths)
        return torch.stack([torch.ones_like(z), z, z * z, z * z * z], dim=1)

    def residual_coefficients(self, x, lengths) -> Any:
        """[4, hidden] least-squares coefficients of the features on the basis (x - matrix @ coef: residuals)."""
        import torch

        return torch.linalg.lstsq(self.matrix(lengths).double(), x.double()).solution.float()


def length_balance_weights(len_chosen, len_rejected) -> Any:
    """Pair weights under which "the longer response wins" is right on half the weight: each side of the
    (longer-won, shorter-won) split gets half the total; equal-length pairs keep weight 1."""
    import torch

    c, r = torch.as_tensor(len_chosen), torch.as_tensor(len_rejected)
    longer, shorter = c > r, c < r
    w = torch.ones(len(c))
    n_unequal = int(longer.sum() + shorter.sum())
    for side in (longer, shorter):
        if side.any():
            w[side] = 0.5 * n_unequal / float(side.sum())
    return w


def fit_head(chosen, rejected, *, weight_decay: float, mean=None, std=None, max_iter: int = 200, weights=None):
    """Fit w minimising the (weighted) mean of softplus(-(x_c - x_r) . w) + wd |w|^2 on standardised features."""
    import torch

    if mean is None:
        both = torch.cat([chosen, rejected])
        mean, std = both.mean(0), both.std(0).clamp_min(1e-6)
    diff = ((chosen - mean) / std) - ((rejected - mean) / std)
    pw = torch.ones(len(diff)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    pw = pw / pw.mean()
    w = torch.zeros(diff.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (pw * torch.nn.functional.softplus(-(diff @ w))).mean() + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), mean, std


def fit_calibration(pos, neg) -> tuple[float, float]:
    """Logistic regression P(label=1 | r) = sigmoid(a r + b) on 1-D rewards (chosen = 1, rejected = 0)."""
    import torch

    x = torch.cat([pos, neg])
    y = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
    ab = torch.tensor([1.0, 0.0], requires_grad=True)
    opt = torch.optim.LBFGS([ab], lr=1.0, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(ab[0] * x + ab[1], y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(ab[0].detach()), float(ab[1].detach())


def fold_of(group: str, folds: int, seed: int) -> int:
    """Deterministic CV fold by group hash, so no prompt is in both the fitting and the held-out fold."""
    return int(hashlib.sha1(f"rm-fold:{seed}:{group}".encode()).hexdigest()[:8], 16) % folds


def pair_accuracy(margins, groups: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
    """Share of pairs with margin > 0 (ties count half), with a group-clustered percentile bootstrap CI."""
    from axial.rewards.stats import mean_ci

    wins = [1.0 if m > 0 else 0.5 if m == 0 else 0.0 for m in margins]
    return mean_ci(wins, groups=list(groups), seed=seed)


def _default_layers(n_layers: int) -> list[int]:
    step = max(1, round(n_layers / 8))
    layers = list(range(step, n_layers, step))
    return sorted(set(layers + [n_layers]))


def _feature_table(encoder: Encoder, pairs: Sequence[Pair], layers, cache_dir, desc: str):
    items = list(dict.fromkeys([p.chosen for p in pairs] + [p.rejected for p in pairs]))
    row = {it: i for i, it in enumerate(items)}
    feats = cached_features(encoder, items, layers, cache_dir, desc=desc)
    ci = [row[p.chosen] for p in pairs]
    ri = [row[p.rejected] for p in pairs]
    return feats, ci, ri, [len(it.response) for it in items]


def _design(x, lengths, length_mode: str, basis: LengthBasis | None, coef):
    """Feature rows for the fit: residualised, with z appended, for the modes with an explicit length term."""
    import torch

    if length_mode in ("explicit", "removed"):
        m = basis.matrix(lengths)
        return torch.cat([x - m @ coef, m[:, 1:]], dim=1)
    return x


def _fit(xd, ci, ri, lengths, *, weight_decay: float, length_mode: str):
    """(w, mean, std) on the design matrix; the length columns (if any) are the last three."""
    import torch

    weights = None
    if length_mode == "balanced":
        lengths_t = torch.as_tensor(lengths)
        weights = length_balance_weights(lengths_t[ci], lengths_t[ri])
    return fit_head(xd[ci], xd[ri], weight_decay=weight_decay, weights=weights)


def _margins(xd, ci, ri, w, std, length_mode: str):
    """Held-out BT margins; the "removed" mode scores without its length term."""
    if length_mode == "removed":
        w = w.clone()
        w[-3:] = 0.0
    return ((xd[ci] - xd[ri]) / std) @ w


def cross_validate(feats: dict, ci, ri, lengths: Sequence[int], fold, *, keys: Sequence[str],
                   weight_decays: Sequence[float], length_modes: Sequence[str]) -> list[dict[str, Any]]:
    """k-fold CV (folds = prompt groups) of every (features, weight decay, length mode): held-out BT log-loss
    and agreement on all pairs, on the length-balanced ones (within 20%) and on those the shorter side won."""
    import torch

    lengths_t = torch.as_tensor(lengths)
    lc, lr = lengths_t[ci], lengths_t[ri]
    balanced = (lc != lr) & ((lc - lr).abs() < 0.2 * torch.maximum(lc, lr))
    shorter = lc < lr
    # The residualisation uses no labels, so it is fitted once on all train items rather than per fold.
    basis = LengthBasis.fit(lengths)
    out = []
    for key in keys:
        x = feats[key]
        coef = basis.residual_coefficients(x, lengths) if {"explicit", "removed"} & set(length_modes) else None
        for mode in length_modes:
            xd = _design(x, lengths, mode, basis, coef)
            for wd in weight_decays:
                margin = torch.zeros(len(ci))
                for k in fold.unique():
                    held = fold == k
                    w, _, std = _fit(xd, ci[~held], ri[~held], lengths, weight_decay=wd, length_mode=mode)
                    margin[held] = _margins(xd, ci[held], ri[held], w, std, mode)
                wins = (margin > 0).float() + 0.5 * (margin == 0).float()
                loss = torch.nn.functional.softplus(-margin)
                out.append({"features": key, "weight_decay": wd, "length_mode": mode,
                            "cv_accuracy": float(wins.mean()), "cv_loss": float(loss.mean()),
                            "n_balanced": int(balanced.sum()),
                            "cv_balanced_accuracy": float(wins[balanced].mean()) if balanced.any() else None,
                            "cv_balanced_loss": float(loss[balanced].mean()) if balanced.any() else float("inf"),
                            "n_shorter_wins": int(shorter.sum()),
                            "cv_shorter_wins_accuracy": float(wins[shorter].mean()) if shorter.any() else None})
    return out


def fit_final(x, ci, ri, lengths, *, layer: int, pooling: str, weight_decay: float, length_mode: str) -> Head:
    """The head refitted on all of train with the chosen settings (uncalibrated)."""
    import torch

    if length_mode in ("explicit", "removed"):
        basis = LengthBasis.fit(lengths)
        coef = basis.residual_coefficients(x, lengths)
        w, mean, std = _fit(_design(x, lengths, length_mode, basis, coef), ci, ri, lengths,
                            weight_decay=weight_decay, length_mode=length_mode)
        terms = torch.stack([w[-3:], mean[-3:], std[-3:]], dim=1)
        return Head(layer, pooling, w[:-3], mean[:-3], std[:-3], length_mode=length_mode,
                    basis=(basis.mu, basis.sigma), residual=coef, length_terms=terms)
    w, mean, std = _fit(x, ci, ri, lengths, weight_decay=weight_decay, length_mode=length_mode)
    return Head(layer, pooling, w, mean, std, length_mode=length_mode)


def train_reward(config: RewardConfig, *, pairs: Sequence[Pair] | None = None,
                 test_pairs: Sequence[Pair] | None = None, encoder: Encoder | None = None) -> Path:
    """Train a BT reward head on split=train, choose layer/pooling/wd by k-fold CV on train (lowest held-out BT
    log-loss: a proper score, less noisy than accuracy at this size), refit on all of train, calibrate, report held-out pair accuracy on split=test, and save to `config.out`. Returns the folder.

    `pairs` / `test_pairs` / `encoder` override the data source and encoder (tests and custom data use them).
    """
    import torch
    from safetensors.torch import save_file

    from axial.models import axial_home

    if not config.out:
        raise AxialError("RewardConfig.out: give an output folder")
    out = Path(config.out)
    data_report: dict[str, Any] = {}
    if pairs is None:
        if not config.data:
            raise AxialError("RewardConfig.data: give a data source (see `axial train-reward --help`)")
        train_set = load_pairs(config.axis, config.data, split="train", limit=config.limit,
                               max_pairs_per_prompt=config.max_pairs_per_prompt, seed=config.seed)
        pairs = train_set.pairs
        data_report["train"] = train_set.describe()
        test_set = load_pairs(config.axis, config.data, split="test",
                              max_pairs_per_prompt=config.max_test_pairs_per_prompt, seed=config.seed)
        test_pairs = test_set.pairs
        data_report["test"] = test_set.describe()
    elif config.limit is not None:
        pairs = pairs[: config.limit]
    if len(pairs) < 2:
        raise AxialError(f"reward training for axis '{config.axis}': only {len(pairs)} train pairs in "
                         f"'{config.data}'")
    encoder = encoder or Encoder(config.encoder, dtype=config.dtype, max_length=config.max_length,
                                 max_response_tokens=config.max_response_tokens, batch_size=config.batch_size)
    cache = Path(config.cache_dir) if config.cache_dir else axial_home() / "reward_features"
    layers = ([config.layer] if config.layer is not None
              else config.candidate_layers or _default_layers(encoder.num_layers))
    poolings = list(POOLINGS) if config.pooling == "auto" else [config.pooling]
    wds = [config.weight_decay] if config.weight_decay is not None else config.weight_decays

    feats, ci, ri, lengths = _feature_table(encoder, pairs, layers, cache, desc="encode train")
    fold = torch.tensor([fold_of(p.group, config.folds, config.seed) for p in pairs])
    if len(set(fold.tolist())) < 2:
        raise AxialError(f"reward training: {len(pairs)} pairs fill fewer than 2 of {config.folds} CV folds; "
                         "use more data")
    ci_t, ri_t = torch.tensor(ci), torch.tensor(ri)
    selection = cross_validate(feats, ci_t, ri_t, lengths, fold, keys=[f"{p}.{layer}" for p in poolings
                                                                        for layer in layers],
                               weight_decays=wds, length_modes=config.length_modes)
    loss_key = "cv_loss" if config.criterion == "loss" else "cv_balanced_loss"
    best = min(selection, key=lambda s: (s[loss_key], -s["cv_accuracy"]))
    pooling, layer = best["features"].split(".")
    head = fit_final(feats[best["features"]], ci_t, ri_t, lengths, layer=int(layer), pooling=pooling,
                     weight_decay=best["weight_decay"], length_mode=best["length_mode"])
    r = head.reward(feats[best["features"]], lengths)
    head.calib_a, head.calib_b = fit_calibration(r[ci_t], r[ri_t])
    train_margin = (r[ci_t] - r[ri_t]).tolist()

    metrics: dict[str, Any] = {
        **({"data": data_report} if data_report else {}),
        "selection": {"folds": config.folds, "n_pairs": len(pairs), "criterion": loss_key, "best": best,
                      "grid": selection},
        "length_term": _length_report(head, r, ci_t, ri_t, lengths),
        "train_accuracy": pair_accuracy(train_margin, [p.group for p in pairs]),
        "calibration": {"a": head.calib_a, "b": head.calib_b, "fit_on": "train",
                        "positive": "chosen", "negative": "rejected"},
    }
    judge = BTJudge(head, config.replace(pooling=pooling, layer=int(layer), length_modes=[head.length_mode]),
                    encoder=encoder)
    if test_pairs:
        overlap = {p.group for p in pairs} & {p.group for p in test_pairs}
        if overlap:
            raise AxialError(f"reward training: {len(overlap)} prompt group(s) are in both train and test "
                             f"(e.g. {sorted(overlap)[0][:80]!r}); the split is broken")
        metrics["test"] = judge.evaluate_pairs(test_pairs, cache_dir=cache)
    cfg = config.replace(pooling=pooling, layer=int(layer), weight_decay=best["weight_decay"],
                         length_modes=[head.length_mode], n_train=len(pairs), metrics=metrics,
                         **encoder_identity(config.encoder))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / PROMPTS_FILE,
                      {"hash": "sha256 of the prompt normalised as axial.data.splits does, first 16 hex digits",
                       "prompts": sorted({prompt_hash(p.group) for p in pairs})}, indent=0)
    with atomic_output(out / HEAD_FILE) as tmp:
        save_file({"weight": head.weight.contiguous(), "mean": head.mean.contiguous(), "std": head.std.contiguous(),
                   "calibration": torch.tensor([head.calib_a, head.calib_b]),
                   **({"length_basis": torch.tensor(head.basis), "residual": head.residual.contiguous(),
                       "length_terms": head.length_terms.contiguous()} if head.residual is not None else {})},
                  str(tmp))
    cfg.save(out / CONFIG_FILE)
    _plot_selection(selection, out / "layer_selection.png", title=f"{config.axis} reward head: {config.folds}-fold CV on train")
    return out


def _length_report(head: Head, rewards, ci, ri, lengths) -> dict[str, Any]:
    """How much of the trained head is length: its mode, the explicit terms, and on the train pairs the
    agreement of the full reward and of its length terms alone with the labels."""
    out: dict[str, Any] = {"mode": head.length_mode, "scored": head.length_mode == "explicit",
                           "residualised": head.residual is not None}
    if head.length_terms is not None:
        part = head.length_reward(lengths)
        out.update(basis={"mu": head.basis[0], "sigma": head.basis[1],
                          "z": "(log(1 + characters) - mu) / sigma"},
                   terms={name: [float(v) for v in row] for name, row in
                          zip(("z", "z^2", "z^3"), head.length_terms, strict=True)},
                   train_agreement_length_terms_alone=float(((part[ci] - part[ri]) > 0).float().mean()))
    out["train_agreement"] = float(((rewards[ci] - rewards[ri]) > 0).float().mean())
    return out


def _plot_selection(selection: list[dict], path: Path, *, title: str) -> None:
    """CV accuracy per layer (best weight decay), one line per pooling x length mode; with a second panel for
    the length-balanced held-out pairs when there are any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("cv_accuracy", "all held-out pairs")]
    if any(s.get("cv_balanced_accuracy") is not None for s in selection):
        panels.append(("cv_balanced_accuracy", f"length-balanced pairs (n={selection[0]['n_balanced']})"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.8), squeeze=False)
    for ax, (metric, label) in zip(axes[0], panels, strict=True):
        best: dict[tuple[str, str, int], float] = {}
        for s in selection:
            if s.get(metric) is None:
                continue
            pooling, layer = s["features"].split(".")
            k = (pooling, s.get("length_mode", "free"), int(layer))
            best[k] = max(best.get(k, 0.0), s[metric])
        for pooling, mode in sorted({k[:2] for k in best}):
            pts = sorted((layer, acc) for (p, m, layer), acc in best.items() if (p, m) == (pooling, mode))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3,
                    label=f"{pooling} pool, length {mode}")
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("encoder layer")
        ax.set_ylabel(f"CV agreement, {label}")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


class BTJudge(Judge):
    """Scores with a trained BT head: score() = calibrated P(good) in [0, 1]; compare() = sigmoid(r_a - r_b)."""

    kind = "rm"

    def __init__(self, head: Head, config: RewardConfig, *, encoder: Encoder | None = None, path: str | None = None):
        self.head, self.config, self.axis, self.path = head, config, config.axis, path
        self.name = f"rm:{Path(path).name if path else config.axis}"
        self.encoder = encoder or Encoder(config.encoder, dtype=config.dtype, max_length=config.max_length,
                                          max_response_tokens=config.max_response_tokens,
                                          batch_size=config.batch_size)
        # Set by load() from train_prompts.json; validate_judge refuses data that overlaps it.
        self.train_prompt_hashes: set[str] | None = None
        test = config.metrics.get("test")
        self.validation = ({"metric": "pair_accuracy", **{k: v for k, v in test.items() if k != "subsets"},
                            "data": f"{config.data} (split=test)"} if test else None)

    @classmethod
    def load(cls, path: str | Path, axis: str | None = None) -> BTJudge:
        from safetensors.torch import load_file

        path = Path(path)
        if not (path / HEAD_FILE).exists() or not (path / CONFIG_FILE).exists():
            raise AxialError(f"reward model '{path}': expected {HEAD_FILE} and {CONFIG_FILE} there "
                             "(made by `axial train-reward`)")
        config = RewardConfig.load(path / CONFIG_FILE)
        if axis is not None and axis != config.axis:
            raise AxialError(f"reward model '{path}' was trained for axis '{config.axis}', not '{axis}'")
        if config.layer is None or config.pooling not in POOLINGS or len(config.length_modes) != 1:
            raise AxialError(f"reward model '{path}': {CONFIG_FILE} has no trained layer/pooling/length mode")
        t = load_file(str(path / HEAD_FILE))
        basis = tuple(float(v) for v in t["length_basis"]) if "length_basis" in t else Head.basis
        head = Head(config.layer, config.pooling, t["weight"], t["mean"], t["std"],
                    float(t["calibration"][0]), float(t["calibration"][1]), length_mode=config.length_modes[0],
                    basis=basis, residual=t.get("residual"), length_terms=t.get("length_terms"))
        judge = cls(head, config.replace(encoder=resolve_encoder(config, path)), path=str(path))
        if (path / PROMPTS_FILE).exists():
            judge.train_prompt_hashes = set(json.loads((path / PROMPTS_FILE).read_text())["prompts"])
        if (path / VALIDATION_FILE).exists():
            # Written by `axial validate-judge --record`: what reports quote for this judge (human labels first).
            from axial.rewards.validate import headline

            judge.validation = headline(json.loads((path / VALIDATION_FILE).read_text()), judge.name) \
                or judge.validation
        return judge

    def rewards(self, prompts: Sequence[Sequence[Message]], responses: Sequence[str], *,
                cache_dir: Path | None = None) -> list[float]:
        """Raw BT rewards (unbounded; only differences are meaningful)."""
        _check_lengths(prompts, responses)
        items = [Item.of(p, r) for p, r in zip(prompts, responses, strict=True)]
        feats = cached_features(self.encoder, items, [self.head.layer], cache_dir, desc="reward")
        return self.head.reward(feats[self.head.key], [len(r) for r in responses]).tolist()

    def score(self, prompts, responses) -> list[float]:
        import torch

        return self.head.prob(torch.tensor(self.rewards(prompts, responses))).tolist()

    def compare(self, prompts, responses_a, responses_b) -> list[float]:
        _check_lengths(prompts, responses_a, responses_b)
        ra = self.rewards(list(prompts) + list(prompts), list(responses_a) + list(responses_b))
        n = len(prompts)
        return [1.0 / (1.0 + math.exp(-(a - b))) for a, b in zip(ra[:n], ra[n:], strict=True)]

    def evaluate_pairs(self, pairs: Sequence[Pair], *, cache_dir: Path | None = None) -> dict[str, Any]:
        """Held-out pair accuracy (ties half) with a group-clustered bootstrap 95% CI."""
        items = list(dict.fromkeys([p.chosen for p in pairs] + [p.rejected for p in pairs]))
        row = {it: i for i, it in enumerate(items)}
        feats = cached_features(self.encoder, items, [self.head.layer], cache_dir, desc="encode test")
        r = self.head.reward(feats[self.head.key], [len(it.response) for it in items]).tolist()
        margins = [r[row[p.chosen]] - r[row[p.rejected]] for p in pairs]
        from axial.rewards.validate import agreement_table

        return {**pair_accuracy(margins, [p.group for p in pairs]), "subsets": agreement_table(margins, pairs)}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(encoder=self.config.encoder, encoder_sha256=self.config.encoder_sha256 or None,
                 layer=self.head.layer, pooling=self.head.pooling, length_mode=self.head.length_mode,
                 data=self.config.data, n_train=self.config.n_train)
        return d


def summary(path: str | Path) -> str:
    """One line for logs: test accuracy with CI and the chosen features."""
    cfg = RewardConfig.load(Path(path) / CONFIG_FILE)
    test = cfg.metrics.get("test")
    acc = (f"test pair accuracy {test['value']:.3f} [{test['ci95'][0]:.3f}, {test['ci95'][1]:.3f}] "
           f"(n={test['n']})" if test else "no test split")
    return f"{cfg.axis} RM ({cfg.pooling} pool, layer {cfg.layer}, n_train={cfg.n_train}): {acc}"


__all__ = ["RewardConfig", "Pair", "BTJudge", "train_reward", "fit_head", "summary"]
