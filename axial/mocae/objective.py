"""The preference objective for routers: train a router so that the routed mixture prefers chosen over rejected.

Shared by MoCaE (`axial train-router objective=preference`) and HoE's router experts (`axial train-hoe`). Base
model and experts stay frozen; only the router's parameters learn. For a pair (x, y_w, y_l) of axis a:

    m(x)  = β [ (log π_w(y_w|x) − log π_ref(y_w|x)) − (log π_w(y_l|x) − log π_ref(y_l|x)) ]
    L     = −log σ(m)                                                     (DPO, Rafailov et al. 2023)

where π_w is the mixture routed by the router (w = gate(router(h))) and π_ref the base model (w = 0); log π
sums the response tokens' log-probabilities. The reference log-probs do not depend on the router: they are
computed once per pair and cached (`ReferenceCache`, which can also hold each single expert's log-probs, from
which HoE takes its ideal point z*). Per-axis losses L_a are the mean over that axis' pairs; MoCaE minimises
their mean (batches hold equally many pairs of every axis), HoE's router expert at λ the Tchebycheff
scalarisation max_a λ_a (L_a − z*_a) (`tchebycheff`). The existing routing regularisers (entropy, KL to uniform,
load balance; axial.mocae.train.routing_losses) can be added; the source-label cross-entropy is an optional
auxiliary term, off by default.

Training (`fit_preference`) is batched, shows progress, and checkpoints the router and optimizer state to one
safetensors file every few steps (through axial.io: a kill never leaves half a checkpoint). Batches are a pure function of (seed, step), so a run killed with SIGKILL and restarted from its
last checkpoint ends with the same router as an uninterrupted run (tests/mocae/test_preference_resume.py).
`PreferenceObjective.__call__(batch) -> losses` is the whole step's forward: a data-parallel wrapper can drive
it and average the router's gradients.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from axial.errors import AxialError
from axial.io import atomic_output
from axial.mixture.resolved import Routed, Static
from axial.mocae.pairs import PreferencePair

BASE = "base"


# ---------------------------------------------------------------- encoding


def encode_pairs(tok, pairs: Sequence[PreferencePair], *, max_prompt_tokens: int, max_response_tokens: int) -> dict:
    """Rows 2i (chosen) and 2i+1 (rejected) of pair i, right-padded: prompt (chat template, left-truncated to its
    last `max_prompt_tokens`) + response (+ eos, cut after `max_response_tokens`).

    `response_mask` marks the response tokens whose log-probabilities are summed, `prompt_mask` the prompt (a
    per-sequence router pools over it, as it does over the prompt at inference)."""
    from axial.generate import chat_prompt_text

    rows, prompt_lens = [], []
    eos = tok.eos_token or ""
    for p in pairs:
        prompt = tok(chat_prompt_text(tok, p.message_list), add_special_tokens=False)["input_ids"]
        prompt = prompt[-max_prompt_tokens:]
        for response in (p.chosen, p.rejected):
            ids = tok(response + eos, add_special_tokens=False)["input_ids"][:max_response_tokens]
            rows.append(prompt + ids)
            prompt_lens.append(len(prompt))
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    response_mask = torch.zeros_like(input_ids, dtype=torch.bool)
    prompt_mask = torch.zeros_like(input_ids, dtype=torch.bool)
    for i, (row, n) in enumerate(zip(rows, prompt_lens, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
        response_mask[i, n: len(row)] = True
        prompt_mask[i, :n] = True
    return {"input_ids": input_ids, "attention_mask": attention, "response_mask": response_mask,
            "prompt_mask": prompt_mask}


def response_logps(model, batch: dict) -> torch.Tensor:
    """Σ log p(response token | everything before it) per row [R] (fp32), with gradients if enabled.

    The LM head runs on the response positions only: a full [R, T, vocab] logits tensor would be most of the
    step's memory for a 49k-token vocabulary."""
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    device = head.weight.device
    ids = batch["input_ids"].to(device)
    hidden = decoder(input_ids=ids, attention_mask=batch["attention_mask"].to(device), use_cache=False)[0]
    target_mask = batch["response_mask"][:, 1:].to(device)  # token t+1 is predicted at position t
    rows = torch.arange(ids.shape[0], device=device)[:, None].expand_as(target_mask)[target_mask]
    logits = head(hidden[:, :-1][target_mask]).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    token_lp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:][target_mask][:, None])[:, 0]
    return torch.zeros(ids.shape[0], device=device).index_add(0, rows, token_lp)


# ---------------------------------------------------------------- losses


def dpo_terms(policy: torch.Tensor, reference: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss [B], margin [B]) for rows (chosen, rejected) interleaved: policy / reference log-probs [2B]."""
    margin = beta * ((policy[0::2] - reference[0::2]) - (policy[1::2] - reference[1::2]))
    return -F.logsigmoid(margin), margin


def per_axis_means(values: torch.Tensor, axis_ids: torch.Tensor, num_axes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean of `values` per axis [A], count per axis [A]); an axis without rows has mean 0 and count 0."""
    counts = torch.zeros(num_axes, device=values.device).index_add(0, axis_ids, torch.ones_like(values))
    sums = torch.zeros(num_axes, device=values.device, dtype=values.dtype).index_add(0, axis_ids, values)
    return sums / counts.clamp_min(1), counts


def tchebycheff(axis_losses: torch.Tensor, weights: torch.Tensor, ideal: torch.Tensor, *,
                smoothing: float = 0.0, present: torch.Tensor | None = None) -> torch.Tensor:
    """max_a λ_a (L_a − z*_a) over the axes with λ_a > 0 (and rows in the batch, `present`).

    The gradient reaches only the worst-off axis (the one furthest from its ideal, weighted by λ). smoothing μ > 0
    gives μ·logsumexp(λ_a (L_a − z*_a) / μ), a smooth upper bound that tends to the max as μ -> 0.
    """
    terms = weights * (axis_losses - ideal)
    keep = weights > 0
    if present is not None:
        keep = keep & present
    if not bool(keep.any()):
        raise AxialError("tchebycheff: no axis with a positive weight has pairs in this batch")
    terms = terms[keep]
    if smoothing > 0:
        return smoothing * torch.logsumexp(terms / smoothing, 0)
    return terms.max()


# ---------------------------------------------------------------- reference log-probs


def _fingerprint(parts: object) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class ReferenceCache:
    """Response log-probs of fixed weight settings (the base model, optionally each single expert) per pair,
    computed once and kept in a safetensors file keyed by pair id, so every training step, resumed run and
    router (HoE trains several on the same pairs) reuses them.

    Columns: 'base' (w = 0) and one per expert name (w = one-hot). The file is rewritten (atomically) every
    `save_every` batches while filling, so a killed fill resumes where it stopped."""

    def __init__(self, path: str | Path, settings: dict):
        self.path = Path(path)
        self.settings = settings  # what the numbers depend on: model, dtype, encoding, experts digest
        self.fingerprint = _fingerprint(settings)
        self.values: dict[tuple[str, str], tuple[float, float]] = {}  # (pair id, column) -> (chosen, rejected)
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        from safetensors import safe_open

        with safe_open(str(self.path), "pt") as f:
            meta = f.metadata() or {}
            if meta.get("fingerprint") != self.fingerprint:
                return  # made with another model, encoding or experts: recomputed (and overwritten)
            table = f.get_tensor("logps")
        keys = json.loads(meta["keys"])
        for (pid, col), row in zip(keys, table.tolist(), strict=True):
            self.values[(pid, col)] = (row[0], row[1])

    def save(self) -> None:
        from safetensors.torch import save_file

        keys = sorted(self.values)
        table = torch.tensor([self.values[k] for k in keys], dtype=torch.float64).reshape(len(keys), 2)
        with atomic_output(self.path) as tmp:
            save_file({"logps": table}, str(tmp), metadata={
                "fingerprint": self.fingerprint, "keys": json.dumps(keys),
                "settings": json.dumps(self.settings, default=str)})

    def missing(self, pairs: Sequence[PreferencePair], columns: Sequence[str]) -> list[tuple[int, str]]:
        return [(i, c) for c in columns for i, p in enumerate(pairs) if (p.id, c) not in self.values]

    def fill(self, model, tok, mixture, pairs: Sequence[PreferencePair], columns: Sequence[str], *,
             batch_size: int, max_prompt_tokens: int, max_response_tokens: int, save_every: int = 20,
             desc: str = "reference log-probs") -> None:
        from tqdm.auto import tqdm

        todo = self.missing(pairs, columns)
        if not todo:
            return
        names = mixture.expert_names
        unknown = [c for c in columns if c != BASE and c not in names]
        if unknown:
            raise AxialError(f"reference log-probs: column(s) {unknown} are neither 'base' nor an expert {names}")
        by_col: dict[str, list[int]] = {}
        for i, c in todo:
            by_col.setdefault(c, []).append(i)
        batches = []
        for col, idx in by_col.items():
            # Similar lengths together: less padding.
            idx = sorted(idx, key=lambda i: len(pairs[i].chosen) + len(pairs[i].rejected))
            batches += [(col, idx[s: s + batch_size]) for s in range(0, len(idx), batch_size)]
        with torch.no_grad():
            for n, (col, idx) in enumerate(tqdm(batches, desc=desc, unit="batch")):
                weights = None if col == BASE else [1.0 if e == col else 0.0 for e in names]
                batch = encode_pairs(tok, [pairs[i] for i in idx], max_prompt_tokens=max_prompt_tokens,
                                     max_response_tokens=max_response_tokens)
                with mixture.using(Static(weights)):
                    lp = response_logps(model, batch).double().cpu().view(-1, 2)
                for i, row in zip(idx, lp.tolist(), strict=True):
                    self.values[(pairs[i].id, col)] = (row[0], row[1])
                if (n + 1) % save_every == 0:
                    self.save()
        self.save()

    def table(self, pairs: Sequence[PreferencePair], column: str) -> torch.Tensor:
        """[2P] interleaved (chosen, rejected) log-probs of one column, in the pairs' order."""
        try:
            return torch.tensor([v for p in pairs for v in self.values[(p.id, column)]], dtype=torch.float32)
        except KeyError:
            raise AxialError(f"reference log-probs: column '{column}' missing for some pairs; fill() first") from None


def expert_dpo_losses(cache: ReferenceCache, pairs: Sequence[PreferencePair], experts: Sequence[str],
                      axes: Sequence[str], beta: float) -> dict[str, dict[str, float]]:
    """{axis: {expert: mean DPO loss of that single expert (w = one-hot) on the axis' pairs}}: where each expert
    stands on each axis' pairs, and HoE's ideal point z*_a = min over the single experts."""
    ref = cache.table(pairs, BASE)
    axis_of = [p.axis for p in pairs]
    out: dict[str, dict[str, float]] = {}
    for e in experts:
        loss, _ = dpo_terms(cache.table(pairs, e), ref, beta)
        for a in axes:
            sel = torch.tensor([x == a for x in axis_of])
            if bool(sel.any()):
                out.setdefault(a, {})[e] = float(loss[sel].mean())
    return out


def per_axis_subset(pairs: Sequence[PreferencePair], axes: Sequence[str], n: int, seed: int = 0) -> list[PreferencePair]:
    """At most `n` pairs per axis, first in a seeded hash order (a larger n gives a superset)."""
    from axial.stats import hash_order

    out: list[PreferencePair] = []
    for a in axes:
        members = [p for p in pairs if p.axis == a]
        out += [members[i] for i in sorted(hash_order([p.id for p in members], seed)[:n])]
    return out


# ---------------------------------------------------------------- batches


class StratifiedBatches:
    """Batch `step` = `per_axis[a]` pairs of every axis a, each axis read in a fresh seeded permutation per
    pass over its pairs: a pure function of (seed, step), which is what makes resumed training exact."""

    def __init__(self, axis_ids: Sequence[int], per_axis: dict[int, int], seed: int):
        self.members = {a: [i for i, x in enumerate(axis_ids) if x == a] for a in per_axis}
        empty = [a for a, m in self.members.items() if not m]
        if empty:
            raise AxialError(f"batches: no pairs for axis index/indices {empty}")
        self.per_axis, self.seed = per_axis, seed
        self._perms: dict[tuple[int, int], list[int]] = {}

    def _perm(self, axis: int, epoch: int) -> list[int]:
        key = (axis, epoch)
        if key not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + axis * 10_007 + epoch)
            m = self.members[axis]
            self._perms[key] = [m[j] for j in torch.randperm(len(m), generator=g).tolist()]
        return self._perms[key]

    def __call__(self, step: int) -> list[int]:
        out = []
        for axis, b in self.per_axis.items():
            n = len(self.members[axis])
            for j in range(step * b, (step + 1) * b):
                out.append(self._perm(axis, j // n)[j % n])
        return out


def per_axis_split(batch_size: int, axes: Sequence[int]) -> dict[int, int]:
    """Spread `batch_size` pairs over the axes, as evenly as possible (at least one each)."""
    if batch_size < len(axes):
        raise AxialError(f"pair batch size {batch_size} is smaller than the number of axes {len(axes)}; every batch "
                         "holds pairs of every axis")
    base, extra = divmod(batch_size, len(axes))
    return {a: base + (1 if i < extra else 0) for i, a in enumerate(axes)}


# ---------------------------------------------------------------- the step


class PreferenceObjective:
    """`objective(batch) -> {"total": loss to minimise, ...}` for one router driving a frozen mixture.

    `batch` is `encode_pairs(...)` plus "reference" [2B] (base log-probs), "axis" [B] (axis index per pair) and,
    for the auxiliary cross-entropy, "label" [B] (the expert index of the pair's axis). `scalarise(per-pair DPO
    loss [B], axis ids [B]) -> scalar` turns the losses into the training loss (mean, or Tchebycheff for HoE).
    """

    def __init__(self, model, mixture, router, gate, *, beta: float, num_axes: int,
                 scalarise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], ce_weight: float = 0.0,
                 entropy_weight: float = 0.0, kl_weight: float = 0.0, balance_weight: float = 0.0):
        self.model, self.mixture, self.router, self.gate = model, mixture, router, gate
        self.beta, self.num_axes, self.scalarise = beta, num_axes, scalarise
        self.weights = {"ce_weight": ce_weight, "entropy_weight": entropy_weight, "kl_weight": kl_weight,
                        "balance_weight": balance_weight}

    def __call__(self, batch: dict) -> dict[str, torch.Tensor]:
        from axial.mocae.train import routing_losses

        router = self.router
        with self.mixture.using(Routed(router, self.gate)), router.pool_over(batch["prompt_mask"]), \
                router.recording() as rec:
            policy = response_logps(self.model, batch)
        reference = batch["reference"].to(policy.device)
        loss, margin = dpo_terms(policy, reference, self.beta)
        axis = batch["axis"].to(policy.device)
        out = {"dpo": loss.mean(), "margin": margin.mean(), "reward_accuracy": (margin > 0).float().mean()}
        total = self.scalarise(loss, axis)
        axis_loss, counts = per_axis_means(loss.detach(), axis, self.num_axes)
        for a in range(self.num_axes):
            if counts[a] > 0:
                out[f"dpo_{a}"] = axis_loss[a]
        if any(self.weights.values()) and rec:
            z = torch.stack([rec[i] for i in sorted(rec)], dim=2)  # [2B, T, L, K]
            if getattr(router, "granularity", "token") == "sequence":
                rows, labels = z[0::2, 0], batch.get("label")  # one decision per pair (both rows share it)
            else:
                real = batch["attention_mask"].bool().to(z.device)
                rows = z[real]
                labels = batch.get("label")
                if labels is not None:
                    labels = labels.repeat_interleave(2).to(z.device)[:, None].expand(real.shape)[real]
            reg = routing_losses(rows, labels if self.weights["ce_weight"] else None, **self.weights)
            total = total + reg["total"]
            out.update({k: v for k, v in reg.items() if k != "total"})
        out["total"] = total
        return out


def mean_scalarise(loss: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    return loss.mean()


def tchebycheff_scalarise(weights: Sequence[float], ideal: Sequence[float], smoothing: float = 0.0):
    """`scalarise` for a router expert at preference λ: Tchebycheff over the batch's per-axis mean losses."""
    w = torch.tensor(list(weights), dtype=torch.float32)
    z = torch.tensor(list(ideal), dtype=torch.float32)

    def scalarise(loss: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
        means, counts = per_axis_means(loss, axis, len(w))
        return tchebycheff(means, w.to(loss.device), z.to(loss.device), smoothing=smoothing, present=counts > 0)

    return scalarise


# ---------------------------------------------------------------- training with checkpoints


def _save_checkpoint(path: Path, router, opt, step: int, history: list[dict], fingerprint: str) -> None:
    from safetensors.torch import save_file

    tensors = {f"router.{k}": v.detach().float().contiguous() for k, v in router.state_dict().items()}
    state = opt.state_dict()
    for pid, st in state["state"].items():
        for name, value in st.items():
            tensors[f"opt.{pid}.{name}"] = torch.as_tensor(value).detach().clone().contiguous()
    meta = {"step": str(step), "fingerprint": fingerprint, "history": json.dumps(history),
            "param_groups": json.dumps(state["param_groups"])}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def checkpoint_matches(path: str | Path, fingerprint: str) -> bool:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return (f.metadata() or {}).get("fingerprint") == fingerprint


def _load_checkpoint(path: Path, router, opt, fingerprint: str) -> tuple[int, list[dict]]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        if meta.get("fingerprint") != fingerprint:
            raise AxialError(f"{path}: a checkpoint of a different run (other settings, data or experts); delete "
                             "it or pass overwrite=true to start over")
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no items())
    router.load_state_dict({k[len("router."):]: v for k, v in tensors.items() if k.startswith("router.")})
    opt_state: dict = {"state": {}, "param_groups": json.loads(meta["param_groups"])}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            opt_state["state"].setdefault(int(pid), {})[name] = v
    opt.load_state_dict(opt_state)
    return int(meta["step"]), json.loads(meta["history"])


def fit_preference(objective: PreferenceObjective, pairs: Sequence[PreferencePair], tok, *,
                   batches: StratifiedBatches, reference: torch.Tensor, axis_ids: Sequence[int],
                   labels: Sequence[int] | None, steps: int, learning_rate: float, weight_decay: float,
                   max_prompt_tokens: int, max_response_tokens: int, checkpoint: str | Path | None,
                   checkpoint_every: int, fingerprint: str, desc: str = "router (preference)",
                   log_every: int = 1) -> list[dict]:
    """Train `objective.router` for `steps` optimizer steps; resume from `checkpoint` when it exists."""
    from tqdm.auto import tqdm

    router = objective.router
    params = [p for p in router.parameters() if p.requires_grad]
    if not params:
        raise AxialError("preference training: the router has no trainable parameters")
    opt = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    start, history = 0, []
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.is_file():
        start, history = _load_checkpoint(ckpt, router, opt, fingerprint)
    router.train()
    bar = tqdm(range(start, steps), desc=desc, unit="step", initial=start, total=steps)
    for step in bar:
        idx = batches(step)
        batch = encode_pairs(tok, [pairs[i] for i in idx], max_prompt_tokens=max_prompt_tokens,
                             max_response_tokens=max_response_tokens)
        batch["reference"] = reference.view(-1, 2)[idx].reshape(-1)
        batch["axis"] = torch.tensor([axis_ids[i] for i in idx])
        if labels is not None:
            batch["label"] = torch.tensor([labels[i] for i in idx])
        losses = objective(batch)
        if not torch.isfinite(losses["total"]):
            raise AxialError(f"preference training: the loss became {float(losses['total'])} at step {step + 1}; "
                             "lower learning_rate or beta")
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
        row = {"step": step + 1, **{k: round(float(v.detach()), 6) for k, v in losses.items()}}
        history.append(row)
        if (step + 1) % log_every == 0:
            bar.set_postfix(loss=f"{row['total']:.4f}", acc=f"{row['reward_accuracy']:.2f}")
        if ckpt is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == steps):
            _save_checkpoint(ckpt, router, opt, step + 1, history, fingerprint)
    router.eval()
    return history


def pair_scores(model, tok, mixture, pairs: Sequence[PreferencePair], reference: torch.Tensor, source, *,
                beta: float, batch_size: int, max_prompt_tokens: int, max_response_tokens: int,
                desc: str = "scoring pairs") -> dict[str, torch.Tensor]:
    """Per-pair DPO loss and margin [P] of the mixture under `source` (any weight source), without gradients."""
    from tqdm.auto import tqdm

    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].chosen) + len(pairs[i].rejected))
    loss, margin = torch.zeros(len(pairs)), torch.zeros(len(pairs))
    resolved = mixture.resolve(source)
    router = getattr(resolved, "router", None)
    with torch.no_grad(), mixture.using(resolved):
        for s in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", leave=False):
            idx = order[s: s + batch_size]
            batch = encode_pairs(tok, [pairs[i] for i in idx], max_prompt_tokens=max_prompt_tokens,
                                 max_response_tokens=max_response_tokens)
            if router is not None:
                with router.pool_over(batch["prompt_mask"]):
                    lp = response_logps(model, batch)
            else:
                lp = response_logps(model, batch)
            ref = reference.view(-1, 2)[idx].reshape(-1)
            loss[idx], margin[idx] = dpo_terms(lp.float().cpu(), ref, beta)
    return {"loss": loss, "margin": margin}


def summarise_pair_scores(scores: dict[str, dict[str, torch.Tensor]], pairs: Sequence[PreferencePair],
                          axes: Sequence[str], *, reference_label: str | None = None) -> dict:
    """{label: {axis: {"dpo_loss", "reward_accuracy"} as value + 95% CI (bootstrap over pairs), plus the paired
    difference in DPO loss vs `reference_label`}} and the mean over axes."""
    from axial.stats import bootstrap_ci, paired_bootstrap_diff

    out: dict = {}
    for label, sc in scores.items():
        row: dict = {}
        for a in axes:
            sel = torch.tensor([p.axis == a for p in pairs])
            if not bool(sel.any()):
                continue
            cell = {"dpo_loss": bootstrap_ci(sc["loss"][sel].numpy()),
                    "reward_accuracy": bootstrap_ci((sc["margin"][sel] > 0).float().numpy())}
            if reference_label and reference_label in scores and label != reference_label:
                cell[f"dpo_loss_minus_{reference_label}"] = paired_bootstrap_diff(
                    scores[reference_label]["loss"][sel].numpy(), sc["loss"][sel].numpy())
            row[a] = cell
        out[label] = row
    return out


def run_fingerprint(fields: dict, pairs: Sequence[PreferencePair], experts_digest: str) -> str:
    """What a checkpoint must match to be resumed: the training settings, the pairs and the experts' weights."""
    return _fingerprint([fields, [p.id for p in pairs], experts_digest])


def uniform_start(router) -> None:
    """Zero the router's output layer: every expert gets weight 1/K (the uniform merge) before training, where a
    random start would be a random mixture."""
    last = ("w2", "b2") if getattr(router, "arch", "linear") == "mlp" else ("w1", "b1")
    with torch.no_grad():
        for name in last:
            getattr(router, name).zero_()



def plot_history(history: list[dict], axes: Sequence[str], path: str | Path, *, title: str = "",
                 window: int = 20) -> Path:
    """Training curves: per-axis DPO loss and reward accuracy (running means over `window` steps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    def running(values):
        v = np.asarray(values, dtype=float)
        c = np.concatenate([[0.0], np.cumsum(v)])
        end = np.arange(1, len(v) + 1)
        start = np.maximum(end - window, 0)
        return (c[end] - c[start]) / (end - start)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    steps = np.array([h["step"] for h in history])
    for i, a in enumerate(axes):
        rows = [(h["step"], h[f"dpo_{i}"]) for h in history if f"dpo_{i}" in h]
        if rows:
            x, y = zip(*rows, strict=True)
            ax1.plot(x, running(y), label=a)
    ax1.plot(steps, running([h["total"] for h in history]), "k--", lw=1, label="training loss")
    ax1.set(xlabel="step", ylabel=f"DPO loss (running mean, {window} steps)")
    ax1.axhline(np.log(2), color="grey", lw=0.8, ls=":")
    ax1.legend(fontsize=8)
    ax2.plot(steps, running([h["reward_accuracy"] for h in history]), color="C3")
    ax2.set(xlabel="step", ylabel="reward accuracy (margin > 0)", ylim=(0, 1))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
