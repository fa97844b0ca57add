"""Step 3 (rewrite): rewrite single-reward prompts so they carry multi-axis intent, and keep only rewrites that work.

For each single-reward prompt, an LLM rewriter (the base model, any HF model, or an OpenAI-compatible endpoint)
writes `rewrite_candidates` rewrites from a template file. A candidate is kept only if
  (a) it keeps the original intent: cosine similarity of mean-pooled hidden states (the base model or another
      encoder) >= similarity_threshold. Cosines of mean-pooled decoder states are high even for unrelated texts,
      so the summary also reports the cosine between each original and an UNRELATED prompt of the pool: the
      threshold means something only well above that baseline.
  (b) re-sampling k rollouts of it (same settings and judges as `sample`) gives a higher multi-axis envelope
      than the original prompt (by more than min_gain). With fresh_baseline (the default) the original is
      re-sampled too, in the same call: its envelope from `sample` is biased low, because the prompt was picked
      as single-reward for scoring low on the other axes in exactly those rollouts, so comparing a rewrite with
      it would credit any rewrite with plain regression to the mean.
Of the candidates passing both, the one with the highest envelope is kept. Every decision is appended to
rewrites.jsonl (one line per original prompt, so a killed run resumes); every rejected candidate is listed
with its reason in rewrites_rejected.jsonl.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from axial.errors import AxialError
from axial.generate import GenerationConfig
from axial.io import atomic_write_json, atomic_write_lines
from axial.mora.isolate import envelope, envelope_value
from axial.mora.prompts import Prompt
from axial.mora.sample import (
    Generator,
    append_jsonl,
    check_meta,
    chunk_seed,
    read_jsonl_resumable,
    rollouts_for,
    sampling_config,
)

TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "mora_rewrite.txt"
_LABEL = re.compile(r"^\s*(rewritten request|rewrite|request|user)\s*:\s*", re.IGNORECASE)

RewriteFn = Callable[[Sequence[str], GenerationConfig], list[str]]


def load_template(path: str | None) -> str:
    path = Path(path) if path else TEMPLATE
    if not path.exists():
        raise AxialError(f"MoraConfig.rewrite_template: {path} not found")
    text = path.read_text()
    try:
        text.format(prompt="", axes="", good_axis="", missing_axes="")
    except (KeyError, IndexError) as e:
        raise AxialError(f"MoraConfig.rewrite_template: {path}: unknown placeholder {e}; use {{prompt}}, {{axes}}, "
                         "{good_axis}, {missing_axes} (write literal braces as {{ and }})") from e
    return text


def fill_template(template: str, prompt: str, good_axis: str, axes) -> str:
    missing = [a.name for a in axes if a.name != good_axis]
    return template.format(prompt=prompt, good_axis=good_axis, missing_axes=" and ".join(missing),
                           axes="\n".join(f"- {a.name}: {a.description}" for a in axes))


def clean_rewrite(text: str) -> str:
    """The rewritten request alone: first paragraph, without a leading label or wrapping quotes."""
    text = text.strip()
    text = _LABEL.sub("", text)
    text = text.split("\n\n")[0].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def hf_rewriter(model, tok) -> RewriteFn:
    from axial.generate import generate_responses

    def rewrite(instructions, cfg):
        return generate_responses(model, tok, list(instructions), cfg, progress=False)

    return rewrite


def openai_rewriter(model_name: str) -> RewriteFn:
    """An OpenAI-compatible chat endpoint (env AXIAL_REWRITER_BASE_URL, AXIAL_REWRITER_API_KEY)."""
    try:
        from openai import OpenAI
    except ImportError as e:
        raise AxialError("MoraConfig.rewriter: 'openai:MODEL' needs `pip install openai`") from e
    client = OpenAI(base_url=os.environ.get("AXIAL_REWRITER_BASE_URL"),
                    api_key=os.environ.get("AXIAL_REWRITER_API_KEY", "none"))

    def rewrite(instructions, cfg):
        out = []
        for text in instructions:
            reply = client.chat.completions.create(
                model=model_name, messages=[{"role": "user", "content": text}], temperature=cfg.temperature,
                top_p=cfg.top_p, max_tokens=cfg.max_new_tokens)
            out.append(reply.choices[0].message.content or "")
        return out

    return rewrite


def make_rewriter(config, base=None) -> RewriteFn:
    if config.rewriter.startswith("openai:"):
        return openai_rewriter(config.rewriter.partition(":")[2])
    return hf_rewriter(*_model(config, config.rewriter, base))


def _model(config, spec: str, base):
    if spec == "base":
        if base is not None:
            return base
        spec = config.model
    from axial.models import load_model

    return load_model(spec, dtype=config.dtype)


class MeanPoolEncoder:
    """Sentence vectors: the mean over tokens of one layer's hidden states (padding excluded)."""

    def __init__(self, model, tok, layer: int = -1, batch_size: int = 16):
        self.model, self.tok, self.layer, self.batch_size = model, tok, layer, batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        vecs = []
        old = self.tok.padding_side
        self.tok.padding_side = "right"
        try:
            for start in range(0, len(texts), self.batch_size):
                batch = self.tok(list(texts[start:start + self.batch_size]), return_tensors="pt", padding=True,
                                 truncation=True, max_length=256).to(self.model.device)
                with torch.no_grad():
                    hidden = self.model(**batch, output_hidden_states=True).hidden_states[self.layer]
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                vecs.append(pooled.float().cpu().numpy())
        finally:
            self.tok.padding_side = old
        return np.concatenate(vecs) if vecs else np.zeros((0, 1))


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True).clip(1e-12)
    return (a * b).sum(-1)


def rewrite_meta(config) -> dict:
    return {"rewriter": config.rewriter, "template": str(config.rewrite_template or "builtin:mora_rewrite.txt"),
            "rewrite_candidates": config.rewrite_candidates, "similarity_encoder": config.similarity_encoder,
            "similarity_layer": config.similarity_layer, "similarity_threshold": config.similarity_threshold,
            "min_gain": config.min_gain, "fresh_baseline": config.fresh_baseline, "envelope": config.envelope,
            "k": config.k, "seed": config.seed,
            "judges": {a: config.judge_spec(a) for a in config.axis_names()}}


def rewrite(config, rows: Sequence[Mapping], isolated: Sequence[Mapping], out_dir: str | Path, *,
            generate: Generator | None = None, judges: Mapping | None = None, rewriter: RewriteFn | None = None,
            encoder: MeanPoolEncoder | None = None, base=None) -> dict:
    """Rewrite every single-reward prompt; returns the summary (also written to rewrite_summary.json)."""
    from axial.mora.sample import load_judges, make_generator

    out_dir = Path(out_dir)
    path = out_dir / "rewrites.jsonl"
    check_meta(path, rewrite_meta(config))
    path.touch()  # an experiment with no single-reward prompt still records that rewrite ran
    axes = config.axes()
    names = [a.name for a in axes]
    by_id = {r["id"]: r for r in rows}
    targets = [p for p in isolated if p["class"] == "single"]
    decisions = read_jsonl_resumable(path)
    done = {d["id"] for d in decisions}
    todo = [p for p in targets if p["id"] not in done]
    if todo:
        if base is None and "base" in (config.rewriter, config.similarity_encoder) and generate is None:
            from axial.models import load_model

            base = load_model(config.model, dtype=config.dtype)
        judges = judges if judges is not None else load_judges(config)
        generate = generate or (make_generator(config, *base) if base else make_generator(config))
        rewriter = rewriter or make_rewriter(config, base)
    if targets and encoder is None:
        encoder = MeanPoolEncoder(*_model(config, config.similarity_encoder, base), layer=config.similarity_layer)
    template = load_template(config.rewrite_template)
    bar = tqdm(total=len(targets), initial=len(targets) - len(todo), desc="rewrite", unit="prompt")
    for start in range(0, len(todo), config.chunk_prompts):
        chunk = todo[start:start + config.chunk_prompts]
        new = _rewrite_chunk(config, chunk, by_id, axes, names, template, generate, judges, rewriter, encoder)
        append_jsonl(path, new)
        decisions.extend(new)
        bar.update(len(chunk))
    bar.close()
    originals = [by_id[t["id"]]["messages"][-1]["content"] for t in targets]
    baseline = unrelated_similarity(encoder, originals) if encoder is not None else None
    summary = summarise(config, decisions, baseline)
    _write_rejected(out_dir / "rewrites_rejected.jsonl", decisions)
    atomic_write_json(out_dir / "rewrite_summary.json", summary)
    return summary


def _rewrite_chunk(config, chunk, by_id, axes, names, template, generate, judges, rewriter, encoder) -> list[dict]:
    n = config.rewrite_candidates
    originals = [by_id[p["id"]]["messages"][-1]["content"] for p in chunk]
    instructions = [fill_template(template, text, p["good_axis"], axes) for p, text in zip(chunk, originals,
                                                                                           strict=True)
                    for _ in range(n)]
    seed = chunk_seed(config.seed + 1, [p["id"] for p in chunk])
    cfg = GenerationConfig(max_new_tokens=config.rewrite_max_new_tokens, do_sample=True,
                           temperature=config.rewrite_temperature, top_p=config.top_p,
                           batch_size=config.batch_size, seed=seed)
    candidates = [clean_rewrite(t) for t in rewriter(instructions, cfg)]
    orig_vecs = encoder.encode(originals)
    nonempty = [c for c in candidates if c]
    cand_vecs = iter(encoder.encode(nonempty)) if nonempty else iter(())
    entries = []
    for i in range(len(chunk)):
        for j in range(n):
            text = candidates[i * n + j]
            entry = {"text": text, "similarity": None, "envelope": None, "best": None, "rollouts": None}
            if not text:
                entry.update(status="rejected", reason="empty rewrite")
            elif text.strip().lower() == originals[i].strip().lower():
                next(cand_vecs)
                entry.update(status="rejected", reason="rewrite is the original prompt")
            else:
                sim = float(cosine(orig_vecs[i], next(cand_vecs)))
                entry["similarity"] = sim
                if sim < config.similarity_threshold:
                    entry.update(status="rejected", reason=f"intent not kept: similarity {sim:.3f} < "
                                                           f"{config.similarity_threshold}")
                else:
                    entry.update(status="pending")
            entries.append((i, entry))
    pending = [(i, e) for i, e in entries if e["status"] == "pending"]
    baselines = {i: p["envelope"] for i, p in enumerate(chunk)}
    fresh: list[int] = []
    if pending:
        prompts = [Prompt(id=f"{chunk[i]['id']}#rw{k}", axis=chunk[i]["axis"],
                          messages=by_id[chunk[i]["id"]]["messages"][:-1] + [{"role": "user", "content": e["text"]}])
                   for k, (i, e) in enumerate(pending)]
        fresh = sorted({i for i, _ in pending}) if config.fresh_baseline else []
        prompts += [Prompt(id=f"{chunk[i]['id']}#orig", axis=chunk[i]["axis"], messages=by_id[chunk[i]["id"]]["messages"])
                    for i in fresh]
        scored = rollouts_for(prompts, config.k, generate, judges, sampling_config(config, seed + 1))
        for j, i in enumerate(fresh):
            env = envelope({"id": chunk[i]["id"], "rollouts": scored[len(pending) + j]}, names)
            baselines[i] = envelope_value(env["best"], config.envelope)
        for (i, e), rollouts in zip(pending, scored, strict=False):
            env = envelope({"id": chunk[i]["id"], "rollouts": rollouts}, names)
            value = envelope_value(env["best"], config.envelope)
            e.update(rollouts=rollouts, best=env["best"], envelope=value)
            if value > baselines[i] + config.min_gain:
                e.update(status="passed", reason=None)
            else:
                e.update(status="rejected", reason=f"no multi-axis gain: {config.envelope} {value:.4f} <= "
                                                   f"original {baselines[i]:.4f} + min_gain {config.min_gain}")
    out = []
    for i, p in enumerate(chunk):
        mine = [e for j, e in entries if j == i]
        passed = [e for e in mine if e["status"] == "passed"]
        kept = max(passed, key=lambda e: e["envelope"]) if passed else None
        for e in passed:
            if e is not kept:
                e.update(status="rejected", reason="another candidate had a higher envelope")
        if kept is not None:
            kept["status"] = "kept"
        row = by_id[p["id"]]
        out.append({"id": p["id"], "axis": p["axis"], "good_axis": p["good_axis"], "original": originals[i],
                    "original_envelope": p["envelope"], "original_best": p["best"],
                    "baseline_envelope": baselines[i], "baseline": "fresh" if i in fresh else "isolate",
                    "kept": kept is not None,
                    "rewrite": kept["text"] if kept else None,
                    "messages": (row["messages"][:-1] + [{"role": "user", "content": kept["text"]}]) if kept else None,
                    "rollouts": kept["rollouts"] if kept else None, "candidates": mine})
    return out


def unrelated_similarity(encoder: MeanPoolEncoder, texts: Sequence[str]) -> dict:
    """Mean cosine between each text and the next one in a fixed order (unrelated prompts): the floor any
    similarity threshold has to clear."""
    from axial.stats import bootstrap_ci

    if len(texts) < 2:
        return {"value": None, "ci95": [None, None], "n": 0}
    vecs = encoder.encode(list(texts))
    sims = cosine(vecs, np.roll(vecs, 1, axis=0))
    return bootstrap_ci(sims)


def summarise(config, decisions: Sequence[Mapping], baseline: dict | None) -> dict:
    from axial.stats import bootstrap_ci

    cands = [c for d in decisions for c in d["candidates"]]
    sims = [c["similarity"] for c in cands if c["similarity"] is not None]
    kept = [d for d in decisions if d["kept"]]
    gains = [next(c for c in d["candidates"] if c["status"] == "kept")["envelope"] - d["baseline_envelope"]
             for d in kept]
    reasons = Counter(c["reason"].split(":")[0] for c in cands if c["status"] == "rejected")
    return {
        "n_single_reward_prompts": len(decisions), "n_candidates": len(cands), "n_kept": len(kept),
        "keep_rate": len(kept) / len(decisions) if decisions else None,
        "rejections_by_reason": dict(reasons),
        "similarity_threshold": config.similarity_threshold,
        "similarity_of_candidates": {**bootstrap_ci(sims), "min": min(sims, default=None),
                                     "median": float(np.median(sims)) if sims else None,
                                     "max": max(sims, default=None)},
        "similarity_unrelated_baseline": baseline,
        "envelope": config.envelope, "baseline": "fresh" if config.fresh_baseline else "isolate",
        "envelope_gain_of_kept": bootstrap_ci(gains),
        # How far the originals' envelopes move when simply re-sampled: the bias fresh_baseline removes.
        "original_resampled_minus_isolate": bootstrap_ci([d["baseline_envelope"] - d["original_envelope"]
                                                          for d in decisions if d["baseline"] == "fresh"]),
    }


def _write_rejected(path: Path, decisions: Sequence[Mapping]) -> None:
    atomic_write_lines(path, [json.dumps({"id": d["id"], "original": d["original"], "rewrite": c["text"],
                                          "reason": c["reason"], "similarity": c["similarity"],
                                          "envelope": c["envelope"], "baseline_envelope": d["baseline_envelope"]},
                                         ensure_ascii=False)
                              for d in decisions for c in d["candidates"] if c["status"] == "rejected"])
