"""`train_router(RouterConfig) -> DIR`: train a MoCaE router over frozen experts on a frozen base model.

Two phases, because the router is tiny and almost all of the cost is the transformer's forward pass:

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
    learning_rate: float = 3e-3
    weight_decay: float = 1e-2
    ce_weight: float = 1.0
    entropy_weight: float = 0.0
    kl_weight: float = 0.0
    balance_weight: float = 0.0
    lm_steps: int = 0
    lm_weight: float = 1.0
    lm_batch_size: int = 4
    lm_learning_rate: float = 1e-3
    seed: int = 0
    overwrite: bool = False

    def validate(self) -> None:
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
            if not math.isfinite(value):
                raise AxialError(f"RouterConfig.{name}: must be finite, got {value}")
        if self.per_axis_limit is not None and self.per_axis_limit < 1:
            raise AxialError(f"RouterConfig.per_axis_limit: must be >= 1, got {self.per_axis_limit}")


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


def routing_losses(logits: torch.Tensor, labels: torch.Tensor, cfg: RouterConfig) -> dict[str, torch.Tensor]:
    """logits [R, L, K] (R routing rows, L layers), labels [R]."""
    r, num_layers, k = logits.shape
    logp = torch.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    ce = F.nll_loss(logp.reshape(-1, k), labels.repeat_interleave(num_layers))
    entropy = -(p * logp).sum(-1).mean()
    mean_p = p.mean(0)  # [L, K]
    kl = (mean_p * (mean_p.clamp_min(1e-12).log() + math.log(k))).sum(-1).mean()
    share = F.one_hot(p.argmax(-1), k).float().mean(0)
    balance = k * (share * mean_p).sum(-1).mean()
    total = cfg.ce_weight * ce + cfg.entropy_weight * entropy + cfg.kl_weight * kl + cfg.balance_weight * balance
    correct = (logits.argmax(-1) == labels[:, None]).float().mean()
    return {"total": total, "ce": ce, "entropy": entropy, "kl": kl, "balance": balance, "accuracy": correct}


def fit_on_features(router: MoCaERouter, data: dict[str, torch.Tensor], cfg: RouterConfig) -> list[dict]:
    from tqdm.auto import tqdm

    feats, labels = data["feats"].float(), data["labels"]
    if "valid" in data:  # per token: every sampled token is a row of its own
        valid = data["valid"]
        labels = labels[:, None].expand_as(valid)[valid]
        feats = feats[valid]
    opt = torch.optim.AdamW(router.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
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


def load_base_and_mixture(model_spec: str, dtype: str, expert_dirs: list[str]):
    from axial.mixture import Mixture
    from axial.models import load_model

    model, tok = load_model(model_spec, dtype=dtype)
    model.eval().requires_grad_(False)
    return model, tok, Mixture.attach(model, expert_dirs)


def train_router(cfg: RouterConfig, *, base=None) -> Path:
    """Train, save and return the router folder. `base=(model, tokenizer)` reuses a loaded base model."""
    from safetensors.torch import save_file

    from axial.mixture import GateConfig, Mixture

    if not cfg.experts:
        raise AxialError("RouterConfig.experts: at least two expert adapter folders are needed")
    if len(cfg.experts) < 2:
        raise AxialError(f"RouterConfig.experts: routing needs at least two experts, got {cfg.experts}")
    if not cfg.out:
        raise AxialError("RouterConfig.out: required (output folder)")
    check_launch()
    rank, world_size = init_distributed()
    out = Path(cfg.out)
    if (out / "mocae.json").exists() and not cfg.overwrite:
        raise AxialError(f"{out} already holds a router; pass overwrite=true to replace it")
    barrier()  # every rank has checked before rank 0 writes anything
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        cfg.save(out / "router_config.json")
    t0 = time.time()
    if base is None:
        model, tok, mixture = load_base_and_mixture(cfg.model, cfg.dtype, cfg.experts)
    else:
        model, tok = base
        mixture = Mixture.attach(model, cfg.experts)
    torch.manual_seed(cfg.seed)
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
                             granularity=cfg.granularity, arch=cfg.arch, mlp_hidden=cfg.mlp_hidden)
        # Cheap (linear heads on cached features) and deterministic: every process fits the same heads.
        history = fit_on_features(router, data, cfg)
        importance = task_vector_importance(mixture.experts) if cfg.importance == "task_vector" else None
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
