"""`train_router(RouterConfig) -> DIR`: train a MoCaE router over frozen experts on a frozen base model.

Two objectives (`objective`):

* `preference` — for alignment: per-axis preference pairs (axial.mocae.pairs; HH-RLHF harmless chosen/rejected,
  TruthfulQA correct vs incorrect answers, AlpacaEval GPT-4 annotations, ...) run through the routed mixture and
  a DPO-style loss with the base model as reference makes the mixture prefer the chosen response
  (axial.mocae.objective, where the loss, the cached reference log-probs and the resumable training loop live).
  The router starts at uniform weights; the routing regularisers below can be added and the source-label
  cross-entropy is an optional auxiliary term (`ce_weight`, 0 by default for this objective). Every step runs
  the whole model forward and backward (only the router learns), so it costs far more than `source_ce`.
* `source_ce` (the original recipe) — which dataset a prompt came from, in two phases, because the router is
  tiny and almost all of the cost is the transformer's forward pass:

1. Routing on cached features: one no-grad forward per prompt records, at every decoder block, the
   (normalised) hidden state entering it: mean-pooled over the prompt (per-sequence routing) or a seeded
   sample of prompt tokens (per-token). With `teacher_forcing` the forward runs with the example's own expert
   switched on (one-hot weights), so the features are the states a correctly routing model produces at
   inference. Many epochs over the cache cost seconds. The cache is kept in DIR/features.safetensors and
   reused when the same data and settings are run again.
2. Optional end-to-end phase (`lm_steps > 0`): the router drives the mixture on prompt + response and the
   LM loss on the response tokens back-propagates into the router (base and experts stay frozen), together
   with the routing terms on the prompt.

Losses (weights in the config), over routing decisions p = softmax(z) at every layer:
  ce       cross-entropy of p with the example's axis (= the expert trained on it)
  entropy  mean H(p); a positive weight pushes toward confident, near top-1 routing (TrinityX)
  kl       KL(mean p over the batch || uniform) per layer: keeps every expert in use (TrinityX's KL term)
  balance  Switch-Transformer load balancing K * sum_k f_k P_k (f: argmax share, P: mean probability)
  lm       next-token loss on responses through the mixture (phase 2 only)

Both objectives train per-sequence or per-token routing (`granularity`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from axial.config import Config
from axial.distributed import (
    GradientSync,
    all_sum,
    barrier,
    check_launch,
    gather,
    init_distributed,
    merge_strided,
    world,
)
from axial.errors import AxialError
from axial.io import atomic_output, atomic_write_json
from axial.mixture.resolved import Routed, Static
from axial.mocae.data import RoutingExample, routing_examples
from axial.mocae.router import ARCHS, GRANULARITIES, SCOPES, MoCaERouter, task_vector_importance
from axial.mocae.store import TRAIN_KEYS, key_hash, save_router

FEATURES = "features.safetensors"
IMPORTANCE = ("none", "task_vector")
OBJECTIVES = ("source_ce", "preference")


@dataclass
class RouterConfig(Config):
    experts: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    out: str = ""
    model: str = "embedded"
    dtype: str = "bf16"
    scope: str = "per_layer"
    granularity: str = "sequence"
    arch: str = "linear"
    mlp_hidden: int = 64
    # One more routing option, "no expert" (axial.mocae.router): the weights may sum to less than 1.
    base_option: bool = False
    top_k: int = 0
    importance: str = "none"
    per_axis_limit: int | None = 200
    heldout_fraction: float = 0.3
    max_length: int = 256
    tokens_per_prompt: int = 16
    teacher_forcing: bool = True
    forward_batch_size: int = 8
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float | None = None  # None: 3e-3 (source_ce), 1e-3 (preference)
    weight_decay: float = 1e-2
    ce_weight: float | None = None  # None: 1 (source_ce), 0 (preference: an optional auxiliary term)
    entropy_weight: float = 0.0
    kl_weight: float = 0.0
    balance_weight: float = 0.0
    lm_steps: int = 0
    lm_weight: float = 1.0
    lm_batch_size: int = 4
    lm_learning_rate: float = 1e-3
    seed: int = 0
    overwrite: bool = False
    objective: str = "source_ce"
    # ---- objective=preference (axial.mocae.objective) ----
    steps: int = 300  # optimizer steps
    pair_batch_size: int = 6  # pairs per step, spread evenly over the axes
    beta: float = 0.1  # DPO temperature
    pairs_per_prompt: int = 2
    max_response_tokens: int = 96  # each response's tokens scored (prompt: the last max_length - this)
    checkpoint_every: int = 10
    expert_logps_per_axis: int = 40  # train pairs per axis also scored by each single expert (0 = none): the
    # expert x axis DPO-loss table in train_metrics.json
    validation_per_axis: int = 30  # held-out pairs per axis scored after training (0 = none)
    reference_cache: str = ""  # default: OUT/reference_logps.safetensors (share it between runs on the same pairs)

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise AxialError(f"RouterConfig.objective: must be one of {list(OBJECTIVES)}, got '{self.objective}'")
        # Only the preference objective scores responses; the source objective reads prompts (and a few
        # teacher-forced tokens) within max_length alone.
        if self.objective == "preference" and self.max_response_tokens >= self.max_length:
            raise AxialError(f"RouterConfig.max_response_tokens ({self.max_response_tokens}) must be below "
                             f"max_length ({self.max_length}) for objective=preference: the prompt needs tokens too")
        for name in ("steps", "pair_batch_size", "pairs_per_prompt", "max_response_tokens", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise AxialError(f"RouterConfig.{name}: must be >= 1, got {getattr(self, name)}")
        if self.expert_logps_per_axis < 0:
            raise AxialError(f"RouterConfig.expert_logps_per_axis: must be >= 0, got {self.expert_logps_per_axis}")
        if self.validation_per_axis < 0:
            raise AxialError(f"RouterConfig.validation_per_axis: must be >= 0, got {self.validation_per_axis}")
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise AxialError(f"RouterConfig.beta: must be a positive number, got {self.beta}")
        choices = {"scope": SCOPES, "granularity": GRANULARITIES, "arch": ARCHS, "importance": IMPORTANCE,
                   "dtype": ("auto", "bf16", "fp32")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise AxialError(f"RouterConfig.{name}: must be one of {list(allowed)}, got '{getattr(self, name)}'")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise AxialError(f"RouterConfig.heldout_fraction: must be in (0, 1), got {self.heldout_fraction}")
        for name in ("max_length", "tokens_per_prompt", "forward_batch_size", "batch_size", "lm_batch_size",
                     "mlp_hidden"):
            if getattr(self, name) < 1:
                raise AxialError(f"RouterConfig.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("epochs", "lm_steps", "top_k"):
            if getattr(self, name) < 0:
                raise AxialError(f"RouterConfig.{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("ce_weight", "entropy_weight", "kl_weight", "balance_weight", "lm_weight", "learning_rate",
                     "lm_learning_rate", "weight_decay"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise AxialError(f"RouterConfig.{name}: must be finite, got {value}")
        if self.per_axis_limit is not None and self.per_axis_limit < 1:
            raise AxialError(f"RouterConfig.per_axis_limit: must be >= 1, got {self.per_axis_limit}")

    # None defaults resolved at use time (not in validate): `with_overrides(["objective=preference"])` must not
    # inherit the source_ce values.
    @property
    def effective_ce_weight(self) -> float:
        if self.ce_weight is not None:
            return self.ce_weight
        return 1.0 if self.objective == "source_ce" else 0.0

    @property
    def effective_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 3e-3 if self.objective == "source_ce" else 1e-3


# ---------------------------------------------------------------- encoding


def encode_prompts(tok, examples: list[RoutingExample], max_length: int) -> dict:
    """Left-padded chat prompts, truncated from the left so the last user turn survives."""
    from axial.generate import chat_prompt_text

    texts = [chat_prompt_text(tok, e.messages) for e in examples]
    old = tok.padding_side, tok.truncation_side
    tok.padding_side, tok.truncation_side = "left", "left"
    try:
        return tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length,
                   add_special_tokens=False)
    finally:
        tok.padding_side, tok.truncation_side = old


def encode_with_responses(tok, examples: list[RoutingExample], max_length: int) -> dict:
    """Right-padded prompt + response + eos; labels -100 outside the response; `prompt_mask` marks the prompt."""
    from axial.generate import chat_prompt_text

    rows, prompt_lens = [], []
    for e in examples:
        prompt = tok(chat_prompt_text(tok, e.messages), add_special_tokens=False)["input_ids"][-max_length // 2:]
        response = tok(e.response + (tok.eos_token or ""), add_special_tokens=False)["input_ids"]
        rows.append((prompt + response)[:max_length])
        prompt_lens.append(len(prompt))
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attn = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    prompt_mask = torch.zeros_like(ids, dtype=torch.bool)
    for i, (row, n) in enumerate(zip(rows, prompt_lens, strict=True)):
        ids[i, : len(row)] = torch.tensor(row)
        attn[i, : len(row)] = 1
        labels[i, n: len(row)] = ids[i, n: len(row)]
        prompt_mask[i, :n] = True
    return {"input_ids": ids, "attention_mask": attn, "labels": labels, "prompt_mask": prompt_mask}


def decoder_layers(model):
    from axial.arch import find_decoder_layers

    return find_decoder_layers(model).layers


# ---------------------------------------------------------------- features


def collect_features(model, tok, mixture, examples: list[RoutingExample], *, granularity: str, max_length: int,
                     tokens_per_prompt: int, teacher_forcing: bool, batch_size: int, seed: int = 0,
                     desc: str = "features") -> dict[str, torch.Tensor]:
    """Normalised hidden states entering every block: {"feats": [N, L, H] or [N, S, L, H], "valid": [N, S]}."""
    from tqdm.auto import tqdm

    layers = decoder_layers(model)
    num_layers, k = len(layers), mixture.num_experts
    current: dict = {}
    out: list[list[torch.Tensor]] = [[] for _ in range(num_layers)]

    def make_hook(idx):
        def hook(_module, args, kwargs):
            h = MoCaERouter.normalise(args[0] if args else kwargs["hidden_states"])
            if granularity == "sequence":
                m = current["mask"][..., None]
                out[idx].append(((h * m).sum(1) / m.sum(1).clamp_min(1.0)).cpu())
            else:
                out[idx].append(h[current["rows"], current["cols"]].cpu())
            return None

        return hook

    hooks = [layer.register_forward_pre_hook(make_hook(i), with_kwargs=True) for i, layer in enumerate(layers)]
    # Similar lengths together: less padding per batch. The features go back to the examples' order at the end.
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].messages[-1]["content"]))
    valid_rows: list[torch.Tensor] = []
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
                idx = order[start: start + batch_size]
                batch = [examples[i] for i in idx]
                enc = encode_prompts(tok, batch, max_length).to(device)
                mask = enc["attention_mask"].bool()
                current["mask"] = mask.float()
                if granularity == "token":
                    # One generator per example (seeded by its key): the tokens an example gets do not depend on
                    # which batch or which process (data-parallel shard) it lands in.
                    gens = [torch.Generator().manual_seed(seed + int(key_hash(e.key)[:8], 16)) for e in batch]
                    rows, cols, valid = _sample_tokens(mask.cpu(), tokens_per_prompt, gens)
                    current["rows"], current["cols"] = rows.to(device), cols.to(device)
                    valid_rows.append(valid)
                weights = F.one_hot(torch.tensor([e.label for e in batch]), k).float() if teacher_forcing else None
                with mixture.using(Static(weights)):
                    model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], use_cache=False,
                          logits_to_keep=1)
    finally:
        for h in hooks:
            h.remove()
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    if granularity == "sequence":
        feats = torch.stack([torch.cat(per_layer) for per_layer in out], dim=1)  # [N, L, H]
        return {"feats": feats[inverse], "labels": torch.tensor([e.label for e in examples])}
    s = tokens_per_prompt
    feats = torch.stack([torch.cat(per_layer).view(-1, s, per_layer[0].shape[-1]) for per_layer in out], dim=2)
    return {"feats": feats[inverse], "valid": torch.cat(valid_rows)[inverse],
            "labels": torch.tensor([e.label for e in examples])}


def _sample_tokens(mask: torch.Tensor, s: int, gens: list[torch.Generator]):
    """s positions per row among the real tokens (with repeats when a prompt is shorter than s)."""
    rows, cols, valid = [], [], []
    for i, row in enumerate(mask):
        pos = row.nonzero().flatten()
        pick = pos[torch.randperm(len(pos), generator=gens[i])[:s]]
        v = torch.ones(s, dtype=torch.bool)
        if len(pick) < s:
            v[len(pick):] = False
            pick = torch.cat([pick, pick[:1].repeat(s - len(pick))])
        rows.append(torch.full((s,), i))
        cols.append(pick)
        valid.append(v)
    return torch.stack(rows), torch.stack(cols), torch.stack(valid)


# ---------------------------------------------------------------- losses


def routing_losses(logits: torch.Tensor, labels: torch.Tensor | None, cfg: RouterConfig | None = None, *,
                   ce_weight: float | None = None, entropy_weight: float | None = None, kl_weight: float | None = None,
                   balance_weight: float | None = None) -> dict[str, torch.Tensor]:
    """logits [R, L, K] (R routing rows, L layers), labels [R] (None: no cross-entropy term). Weights come from
    `cfg` unless given."""
    def weight(name, given):
        if given is not None:
            return float(given)
        if cfg is None:
            return 0.0
        return float(cfg.effective_ce_weight if name == "ce_weight" else getattr(cfg, name))

    r, num_layers, k = logits.shape
    logp = torch.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    entropy = -(p * logp).sum(-1).mean()
    mean_p = p.mean(0)  # [L, K]
    kl = (mean_p * (mean_p.clamp_min(1e-12).log() + math.log(k))).sum(-1).mean()
    share = F.one_hot(p.argmax(-1), k).float().mean(0)
    balance = k * (share * mean_p).sum(-1).mean()
    total = (weight("entropy_weight", entropy_weight) * entropy + weight("kl_weight", kl_weight) * kl
             + weight("balance_weight", balance_weight) * balance)
    out = {"entropy": entropy, "kl": kl, "balance": balance}
    if labels is not None:
        ce = F.nll_loss(logp.reshape(-1, k), labels.to(logp.device).repeat_interleave(num_layers))
        total = total + weight("ce_weight", ce_weight) * ce
        out["ce"] = ce
        out["accuracy"] = (logits.argmax(-1) == labels.to(logits.device)[:, None]).float().mean()
    return {"total": total, **out}


def fit_on_features(router: MoCaERouter, data: dict[str, torch.Tensor], cfg: RouterConfig) -> list[dict]:
    from tqdm.auto import tqdm

    feats, labels = data["feats"].float(), data["labels"]
    if "valid" in data:  # per token: every sampled token is a row of its own
        valid = data["valid"]
        labels = labels[:, None].expand_as(valid)[valid]
        feats = feats[valid]
    opt = torch.optim.AdamW(router.parameters(), lr=cfg.effective_learning_rate, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    for epoch in tqdm(range(cfg.epochs), desc="router epochs", unit="epoch"):
        perm = torch.randperm(len(labels), generator=gen)
        sums: dict[str, float] = {}
        for start in range(0, len(perm), cfg.batch_size):
            mb = perm[start: start + cfg.batch_size]
            losses = routing_losses(router.all_layer_logits(feats[mb]), labels[mb], cfg)
            opt.zero_grad()
            losses["total"].backward()
            opt.step()
            for name, v in losses.items():
                sums[name] = sums.get(name, 0.0) + float(v.detach()) * len(mb)
        history.append({"epoch": epoch + 1, **{n: v / len(perm) for n, v in sums.items()}})
    return history


def lm_phase(model, tok, mixture, router: MoCaERouter, gate, examples: list[RoutingExample],
             cfg: RouterConfig) -> list[dict]:
    from tqdm.auto import tqdm

    if any(not e.response.strip() for e in examples):
        raise AxialError("lm_steps > 0 needs a response for every training example")
    rank, world_size = world()
    if cfg.lm_batch_size < world_size:
        raise AxialError(f"RouterConfig.lm_batch_size: {cfg.lm_batch_size} is smaller than the {world_size} "
                         "processes sharing each batch")
    sync = GradientSync(router.parameters())  # data-parallel: every rank takes its share of each global batch
    opt = torch.optim.AdamW(router.parameters(), lr=cfg.lm_learning_rate, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    order: list[int] = []
    history = []
    device = next(model.parameters()).device
    mixture.use(Routed(router, gate))
    try:
        for step in tqdm(range(cfg.lm_steps), desc="router LM phase", unit="step", disable=rank != 0):
            if len(order) < cfg.lm_batch_size:
                order += torch.randperm(len(examples), generator=gen).tolist()
            idx, order = order[: cfg.lm_batch_size], order[cfg.lm_batch_size:]
            batch = [examples[i] for i in idx][rank::world_size]
            enc = {k: v.to(device) for k, v in encode_with_responses(tok, batch, cfg.max_length).items()}
            labels = torch.tensor([e.label for e in batch], device=device)
            with router.pool_over(enc["prompt_mask"]), router.recording() as rec:
                out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=enc["labels"],
                            use_cache=False)
            z = torch.stack([rec[i] for i in sorted(rec)], dim=2)  # [B, T, L, K]
            if router.granularity == "sequence":
                rows, row_labels = z[:, 0], labels
            else:
                rows, row_labels = z[enc["prompt_mask"]], labels[:, None].expand(enc["prompt_mask"].shape)[
                    enc["prompt_mask"]]
            losses = routing_losses(rows, row_labels, cfg)
            # Each part of the loss is a mean (LM over label tokens, routing over rows): weight this process's
            # share so the summed gradients equal one process's on the whole batch.
            n_tok, n_rows = float((enc["labels"][:, 1:] != -100).sum()), float(len(row_labels))
            tot_tok, tot_rows = all_sum([n_tok, n_rows])
            loss = cfg.lm_weight * out.loss * (n_tok / tot_tok) + losses["total"] * (n_rows / tot_rows)
            opt.zero_grad()
            loss.backward()
            sync.step_ready()
            opt.step()
            lm, total, *parts = all_sum([float(out.loss) * n_tok / tot_tok, float(loss),
                                         *(float(v.detach()) * n_rows / tot_rows for n, v in losses.items()
                                           if n != "total")])
            names = [n for n in losses if n != "total"]
            history.append({"step": step + 1, "lm": lm, "total": total, **dict(zip(names, parts, strict=True))})
    finally:
        mixture.use(Static(None))
    return history


# ---------------------------------------------------------------- entry point


def experts_digest(expert_dirs: list[str]) -> str:
    """sha256 over the experts' adapter weights: an expert retrained in place keeps its path, not its digest."""
    h = hashlib.sha256()
    for d in expert_dirs:
        path = Path(d) / "adapter_model.safetensors"
        h.update(path.read_bytes() if path.is_file() else str(d).encode())
    return h.hexdigest()


def _fingerprint(cfg: RouterConfig, examples: list[RoutingExample], expert_dirs: list[str]) -> str:
    fields = {n: getattr(cfg, n) for n in ("model", "dtype", "granularity", "max_length", "tokens_per_prompt",
                                            "teacher_forcing", "seed")}
    payload = json.dumps([fields, expert_dirs, experts_digest(expert_dirs), [(e.key, e.label) for e in examples]],
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _cached_features(path: Path, fingerprint: str) -> dict[str, torch.Tensor] | None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    with safe_open(str(path), "pt") as f:
        if (f.metadata() or {}).get("fingerprint") != fingerprint:
            return None
    return load_file(str(path))


def load_base_and_mixture(model_spec: str, dtype: str, expert_dirs: list[str], base=None):
    """(model, tokenizer, mixture of `expert_dirs`); `base=(model, tokenizer)` reuses a loaded base model."""
    from axial.mixture import Mixture
    from axial.models import load_model

    if base is None:
        model, tok = load_model(model_spec, dtype=dtype)
        model.eval().requires_grad_(False)
    else:
        model, tok = base
    return model, tok, Mixture.attach(model, expert_dirs)


def train_router(cfg: RouterConfig, *, base=None) -> Path:
    """Train, save and return the router folder. `base=(model, tokenizer)` reuses a loaded base model."""
    from safetensors.torch import save_file

    from axial.mixture import GateConfig

    if not cfg.experts:
        raise AxialError("RouterConfig.experts: at least two expert adapter folders are needed")
    if len(cfg.experts) < 2:
        raise AxialError(f"RouterConfig.experts: routing needs at least two experts, got {cfg.experts}")
    if not cfg.out:
        raise AxialError("RouterConfig.out: required (output folder)")
    check_launch()
    rank, world_size = init_distributed()
    if cfg.objective == "preference" and world_size > 1:
        raise AxialError(f"train-router objective=preference runs in one process ({world_size} were launched): "
                         "its data-parallel path is not built yet; run it without torchrun/accelerate")
    out = Path(cfg.out)
    if (out / "mocae.json").exists() and not cfg.overwrite:
        raise AxialError(f"{out} already holds a router; pass overwrite=true to replace it")
    barrier()  # every rank has checked before rank 0 writes anything
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        cfg.save(out / "router_config.json")
    t0 = time.time()
    model, tok, mixture = load_base_and_mixture(cfg.model, cfg.dtype, cfg.experts, base)
    torch.manual_seed(cfg.seed)
    if cfg.objective == "preference":
        try:
            return _train_preference(cfg, model, tok, mixture, out, t0)
        finally:
            mixture.detach()
    try:
        names = mixture.expert_names
        examples = routing_examples(cfg.data, names, "train", heldout_fraction=cfg.heldout_fraction,
                                    per_axis_limit=cfg.per_axis_limit, seed=cfg.seed)
        counts = {n: sum(e.axis == n for e in examples) for n in names}
        fingerprint = _fingerprint(cfg, examples, cfg.experts)
        data = _cached_features(out / FEATURES, fingerprint)
        feature_rows = None
        if data is None:
            # Data-parallel feature pass: each process encodes a strided share of the examples.
            mine = examples[rank::world_size]
            part = collect_features(model, tok, mixture, mine, granularity=cfg.granularity,
                                    max_length=cfg.max_length, tokens_per_prompt=cfg.tokens_per_prompt,
                                    teacher_forcing=cfg.teacher_forcing, batch_size=cfg.forward_batch_size,
                                    seed=cfg.seed)
            feature_rows = gather(len(mine))
            data = merge_strided(gather(part), len(examples))
            if rank == 0:
                with atomic_output(out / FEATURES) as tmp:
                    save_file({k: v.contiguous() for k, v in data.items()}, str(tmp),
                              metadata={"fingerprint": fingerprint})
        t_features = time.time() - t0
        router = MoCaERouter(model.config.hidden_size, names, len(decoder_layers(model)), scope=cfg.scope,
                             granularity=cfg.granularity, arch=cfg.arch, mlp_hidden=cfg.mlp_hidden,
                             base_option=cfg.base_option)
        # Cheap (linear heads on cached features) and deterministic: every process fits the same heads.
        history = fit_on_features(router, data, cfg)
        importance = task_vector_importance(mixture.experts) if cfg.importance == "task_vector" else None
        if cfg.base_option:
            router.gate = GateConfig(top_k=cfg.top_k, importance=importance)
        lm_history = []
        if cfg.lm_steps:
            lm_history = lm_phase(model, tok, mixture, router, GateConfig(top_k=cfg.top_k, importance=importance),
                                  examples, cfg)
        from axial.baseref import base_reference

        base = base_reference(model)
    finally:
        mixture.detach()
    if rank != 0:
        barrier()  # rank 0 writes the folder
        return out
    # mocae.json (written by save_router) comes last: a folder with it is a complete router, and calibrate
    # relies on train_keys.json being there.
    atomic_write_json(out / TRAIN_KEYS, sorted({key_hash(e.key) for e in examples}), indent=None)
    metrics = {"examples": counts, "feature_seconds": round(t_features, 1),
               "total_seconds": round(time.time() - t0, 1), "final": history[-1] if history else None,
               "history": history, "lm_history": lm_history,
               "distributed": {"world_size": world_size, "feature_rows_per_rank": feature_rows}}
    atomic_write_json(out / "train_metrics.json", metrics)
    save_router(router, out, expert_dirs=cfg.experts, base_model=cfg.model, top_k=cfg.top_k, importance=importance,
                extra={"train_examples": counts, "base": base})
    barrier()
    return out


# ---------------------------------------------------------------- objective = preference


def reference_settings(model_spec: str, dtype: str, max_prompt_tokens: int, max_response_tokens: int,
                       expert_dirs: list[str]) -> dict:
    """What cached log-probs depend on (axial.mocae.objective.ReferenceCache)."""
    return {"model": model_spec, "dtype": dtype, "max_prompt_tokens": max_prompt_tokens,
            "max_response_tokens": max_response_tokens, "experts": experts_digest(expert_dirs)}


def _train_preference(cfg: RouterConfig, model, tok, mixture, out: Path, t0: float) -> Path:
    from axial.mixture import GateConfig
    from axial.mixture.resolved import Routed, Static
    from axial.mocae import objective as obj
    from axial.mocae.pairs import preference_pairs, source_axis

    names = mixture.expert_names
    axes = list(dict.fromkeys(source_axis(s) for s in cfg.data))
    unknown = [a for a in axes if a not in names]
    if unknown:
        raise AxialError(f"RouterConfig.data: axis/axes {unknown} have no expert among {names}; a preference-trained "
                         "router serves each axis' pairs with the expert named after it")
    pair_set = preference_pairs(cfg.data, axes, "train", heldout_fraction=cfg.heldout_fraction,
                                per_axis_limit=cfg.per_axis_limit, pairs_per_prompt=cfg.pairs_per_prompt, seed=cfg.seed)
    pairs = pair_set.pairs
    prompt_tokens = cfg.max_length - cfg.max_response_tokens
    enc = {"max_prompt_tokens": prompt_tokens, "max_response_tokens": cfg.max_response_tokens}
    settings = reference_settings(cfg.model, cfg.dtype, prompt_tokens, cfg.max_response_tokens, cfg.experts)
    cache = obj.ReferenceCache(cfg.reference_cache or out / "reference_logps.safetensors", settings)
    cache.fill(model, tok, mixture, pairs, [obj.BASE], batch_size=cfg.forward_batch_size, **enc)
    probe = obj.per_axis_subset(pairs, axes, cfg.expert_logps_per_axis, cfg.seed)
    cache.fill(model, tok, mixture, probe, names, batch_size=cfg.forward_batch_size, desc="single experts' log-probs",
               **enc)
    t_reference = time.time() - t0

    router = MoCaERouter(model.config.hidden_size, names, len(decoder_layers(model)), scope=cfg.scope,
                         granularity=cfg.granularity, arch=cfg.arch, mlp_hidden=cfg.mlp_hidden,
                         base_option=cfg.base_option)
    obj.uniform_start(router)
    importance = task_vector_importance(mixture.experts) if cfg.importance == "task_vector" else None
    gate = GateConfig(top_k=cfg.top_k, importance=importance)
    if cfg.base_option:
        router.gate = gate
    axis_ids = [axes.index(p.axis) for p in pairs]
    labels = [names.index(p.axis) for p in pairs]
    objective = obj.PreferenceObjective(model, mixture, router, gate, beta=cfg.beta, num_axes=len(axes),
                                        scalarise=obj.mean_scalarise, ce_weight=cfg.effective_ce_weight,
                                        entropy_weight=cfg.entropy_weight, kl_weight=cfg.kl_weight,
                                        balance_weight=cfg.balance_weight)
    training = {k: v for k, v in cfg.to_dict().items()
                if k not in ("out", "overwrite", "forward_batch_size", "reference_cache", "checkpoint_every",
                             "validation_per_axis", "expert_logps_per_axis")}
    fingerprint = obj.run_fingerprint(training, pairs, settings["experts"])
    checkpoint = out / "checkpoint.safetensors"
    if cfg.overwrite and checkpoint.is_file() and not obj.checkpoint_matches(checkpoint, fingerprint):
        checkpoint.unlink()
    history = obj.fit_preference(
        objective, pairs, tok, batches=obj.StratifiedBatches(axis_ids, obj.per_axis_split(cfg.pair_batch_size,
                                                                                          range(len(axes))), cfg.seed),
        reference=cache.table(pairs, obj.BASE), axis_ids=axis_ids, labels=labels, steps=cfg.steps,
        learning_rate=cfg.effective_learning_rate, weight_decay=cfg.weight_decay, checkpoint=checkpoint,
        checkpoint_every=cfg.checkpoint_every, fingerprint=fingerprint, **enc)
    t_train = time.time() - t0 - t_reference

    metrics: dict = {"objective": "preference", "axes": axes, "pairs": pair_set.describe(),
                     "reference_seconds": round(t_reference, 1), "train_seconds": round(t_train, 1)}
    if probe:
        metrics["expert_dpo_loss_on_train_pairs"] = {
            "pairs": {a: sum(p.axis == a for p in probe) for a in axes},
            "loss": obj.expert_dpo_losses(cache, probe, names, axes, cfg.beta)}
    if cfg.validation_per_axis:
        held = preference_pairs(cfg.data, axes, "heldout", heldout_fraction=cfg.heldout_fraction,
                                per_axis_limit=cfg.validation_per_axis, pairs_per_prompt=1, seed=cfg.seed).pairs
        cache.fill(model, tok, mixture, held, [obj.BASE], batch_size=cfg.forward_batch_size, desc="held-out reference",
                   **enc)
        ref = cache.table(held, obj.BASE)
        sources = {"router": Routed(router, gate), "uniform": Static([1.0 / len(names)] * len(names)),
                   **{f"expert:{n}": Static([1.0 if m == n else 0.0 for m in names]) for n in names}}
        scores = {label: obj.pair_scores(model, tok, mixture, held, ref, src, beta=cfg.beta,
                                         batch_size=cfg.forward_batch_size, desc=f"held-out pairs: {label}", **enc)
                  for label, src in sources.items()}
        metrics["heldout"] = {"pairs": {a: sum(p.axis == a for p in held) for a in axes},
                              "scores": obj.summarise_pair_scores(scores, held, axes, reference_label="uniform")}
    metrics["total_seconds"] = round(time.time() - t0, 1)
    metrics["final"] = history[-1] if history else None
    metrics["history"] = history
    atomic_write_json(out / TRAIN_KEYS, sorted({key_hash(p.key) for p in pairs}), indent=None)
    atomic_write_json(out / "train_metrics.json", metrics)
    obj.plot_history(history, axes, out / "training.png", title=f"router {out.name}: preference objective")
    # mocae.json (written by save_router) last: a folder with it is a complete router.
    from axial.baseref import base_reference

    save_router(router, out, expert_dirs=cfg.experts, base_model=cfg.model, top_k=cfg.top_k, importance=importance,
                extra={"objective": "preference", "train_pairs": pair_set.counts(), "base": base_reference(model)})
    checkpoint.unlink(missing_ok=True)
    return out
