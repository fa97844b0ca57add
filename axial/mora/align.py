"""Step 4 (align): training data from the scored rollouts, trained with axial.experts' TRL trainer.

Arms (what the with-vs-without-rewrite comparison rests on; both use the same training prompts):
  rewritten  every single-reward prompt whose rewrite was kept is replaced by the rewrite, with the rollouts
             sampled from the rewrite; every other prompt is used as it was (MORA).
  original   every training prompt as it was (the ablation: the same procedure WITHOUT rewriting).
Modes:
  sequential    one stage per axis in `axis_order` (default: the registry's order, helpful -> harmless ->
                honest); stage a trains on, per prompt, the rollout best on axis a (SFT) or the best-vs-worst
                pair on axis a (DPO), continuing the previous stage's adapter.
  simultaneous  one stage on the combined reward: the mean over axes of per-axis z-scores (each axis
                standardised over all rollouts of the arm's pool, so axes on different judge scales weigh the
                same).
The result is a plain PEFT adapter (`<out>/<mode>_<method>/final`), usable as an expert anywhere in axial.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from axial.data.records import PreferenceRecord, SFTRecord
from axial.errors import AxialError
from axial.io import atomic_write_bytes, atomic_write_json

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


def arm_pool(rows: Sequence[Mapping], decisions: Sequence[Mapping], arm: str) -> list[dict]:
    """The prompts (with their rollouts) an arm trains on; see the module docstring."""
    if arm == "original":
        return [dict(r) for r in rows]
    if arm != "rewritten":
        raise AxialError(f"align arm '{arm}': expected rewritten or original")
    kept = {d["id"]: d for d in decisions if d["kept"]}
    pool = []
    for r in rows:
        d = kept.get(r["id"])
        pool.append(dict(r, messages=d["messages"], rollouts=d["rollouts"], rewritten=True) if d else dict(r))
    return pool


def zscores(pool: Sequence[Mapping], axes: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Per-axis (mean, std) over every rollout of the pool; std 0 (a constant judge) is taken as 1."""
    out = {}
    for a in axes:
        values = np.array([r["scores"][a] for row in pool for r in row["rollouts"]], dtype=float)
        std = float(values.std()) if len(values) else 0.0
        out[a] = (float(values.mean()) if len(values) else 0.0, std if std > 0 else 1.0)
    return out


def combined(scores: Mapping[str, float], norm: Mapping[str, tuple[float, float]]) -> float:
    return float(np.mean([(scores[a] - m) / s for a, (m, s) in norm.items()]))


def stage_records(pool: Sequence[Mapping], key, method: str, axis_tag: str) -> tuple[list, dict]:
    """One record per prompt: its best rollout by `key` (SFT) or best vs worst (DPO); plus what was left out.

    Rollouts with an empty response cannot be trained on; a prompt left with nothing usable (or, for DPO, with no
    score difference between best and worst) is counted in the returned stats, not silently dropped.
    """
    records, stats = [], {"prompts": len(pool), "no_nonempty_rollout": 0, "tied_best_worst": 0}
    for row in pool:
        usable = [r for r in row["rollouts"] if r["response"].strip()]
        if not usable:
            stats["no_nonempty_rollout"] += 1
            continue
        ranked = sorted(usable, key=key, reverse=True)
        best, worst = ranked[0], ranked[-1]
        meta = {"mora_prompt_id": row["id"], "rewritten": bool(row.get("rewritten")), "best_scores": best["scores"]}
        if method == "sft":
            records.append(SFTRecord(row["messages"], best["response"], axis=axis_tag, id=row["id"], source="mora",
                                     meta=meta))
            continue
        if key(best) == key(worst):
            stats["tied_best_worst"] += 1
            continue
        records.append(PreferenceRecord(row["messages"], best["response"], worst["response"], axis=axis_tag,
                                        id=row["id"], source="mora", meta=meta))
    stats["records"] = len(records)
    return records, stats


def build_stages(config, pool: Sequence[Mapping]) -> list[dict]:
    """[{"name", "axis", "records", "stats"}] in training order, for the config's mode and method."""
    from axial.experts.config import MIXED

    axes = config.axis_names()
    norm = zscores(pool, axes)
    if config.mode == "simultaneous":
        records, stats = stage_records(pool, lambda r: combined(r["scores"], norm), config.method, MIXED)
        return [{"name": "simultaneous", "axis": MIXED, "records": records, "stats": stats}]
    stages = []
    for i, a in enumerate(config.stage_order(), 1):
        # Ties on the stage's axis go to the rollout better on the combined reward, so a stage does not
        # pick, among equally good answers on its axis, one that is worse on the others.
        records, stats = stage_records(pool, lambda r, a=a: (r["scores"][a], combined(r["scores"], norm)),
                                       config.method, a)
        stages.append({"name": f"{i:02d}_{a}", "axis": a, "records": records, "stats": stats})
    return stages


def align(config, rows: Sequence[Mapping], decisions: Sequence[Mapping], arm: str, out: str | Path) -> Path:
    """Train the arm's adapter stage by stage (each stage resumes / is skipped if already trained)."""
    from axial.experts.config import ExpertConfig
    from axial.experts.train import train_expert

    out = Path(out) / f"{config.mode}_{config.method}"
    pool = arm_pool(rows, decisions, arm)
    stages = build_stages(config, pool)
    previous = None
    summary = {"arm": arm, "mode": config.mode, "method": config.method,
               "n_rewritten_prompts": sum(bool(r.get("rewritten")) for r in pool), "stages": []}
    for stage in stages:
        if not stage["records"]:
            raise AxialError(f"align {arm} stage {stage['name']}: no usable training records ({stage['stats']})")
        folder = out / stage["name"]
        expert = ExpertConfig(axis=stage["axis"], data=[], out=str(folder), model=config.model,
                              method=config.method, inject=False, lora_r=config.lora_r,
                              lora_alpha=config.lora_alpha, learning_rate=config.learning_rate, epochs=config.epochs,
                              max_steps=config.max_steps, batch_size=config.train_batch_size,
                              max_length=config.max_length, seed=config.seed, dtype=config.dtype,
                              init_adapter=str(previous) if previous else None)
        train_expert(expert, records=[(stage["axis"], r) for r in stage["records"]])
        summary["stages"].append({"name": stage["name"], "axis": stage["axis"], **stage["stats"]})
        previous = folder
    final = out / "final"
    final.mkdir(parents=True, exist_ok=True)
    for name in ADAPTER_FILES:
        atomic_write_bytes(final / name, (previous / name).read_bytes())
    atomic_write_json(final / "mora_align.json", summary)
    return final
