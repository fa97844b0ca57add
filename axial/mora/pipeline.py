"""The MORA chain over one experiment folder: each step reads what the previous one wrote there.

    out/mora_config.json             the config (every step checks it is the same experiment)
    out/pools.json                   training and held-out prompts (disjoint)
    out/rollouts.jsonl               sample: k scored rollouts per training prompt (append-only, resumable)
    out/isolate*.{jsonl,json,png}    isolate: envelopes, classes, thresholds, reward-space scatter
    out/rewrites*.jsonl, rewrite_summary.json   rewrite: every decision, the rejected candidates with reasons
    out/align/<arm>/...              align: PEFT adapters; arm = rewritten (MORA) or original (the ablation)
    out/report/                      report: per-axis held-out reward before/after, both arms, paired CIs
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from axial.errors import AxialError
from axial.io import atomic_write_json
from axial.mora.config import CONFIG_FILE, MoraConfig
from axial.mora.prompts import Prompt, load_prompt_pools
from axial.mora.sample import read_jsonl_resumable

console = Console(stderr=True)
POOLS = "pools.json"
ROLLOUTS = "rollouts.jsonl"


def save_config(config: MoraConfig) -> None:
    """Save the config in `out`, or check it matches the one already there (except run-time-only fields)."""
    path = config.folder / CONFIG_FILE
    if path.exists():
        old = MoraConfig.load(path).to_dict()
        ignore = {"resamples", "backend", "chunk_prompts", "batch_size", "mode", "method"}
        changed = {k: (old[k], v) for k, v in config.to_dict().items() if k not in ignore and old.get(k) != v}
        if changed:
            detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise AxialError(f"{path}: this experiment was made with a different config ({detail}); use another "
                             "out folder")
    config.save(path)


def pools(config: MoraConfig) -> tuple[list[Prompt], list[Prompt]]:
    path = config.folder / POOLS
    if path.exists():
        data = json.loads(path.read_text())
        return [Prompt(**p) for p in data["train"]], [Prompt(**p) for p in data["heldout"]]
    train, heldout = load_prompt_pools(config)
    atomic_write_json(path, {"train": [p.to_dict() for p in train], "heldout": [p.to_dict() for p in heldout]},
                      indent=None, ensure_ascii=False)
    return train, heldout


def round_robin(prompts: list[Prompt]) -> list[Prompt]:
    """Prompts interleaved across axes (first of each axis, then second, ...), so that a run stopped early has
    sampled every axis about equally rather than only the first source."""
    by_axis: dict[str, list[Prompt]] = {}
    for p in prompts:
        by_axis.setdefault(p.axis, []).append(p)
    queues = list(by_axis.values())
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]


def rollouts(config: MoraConfig) -> list[dict]:
    path = config.folder / ROLLOUTS
    rows = read_jsonl_resumable(path)
    if not rows:
        raise AxialError(f"{path}: no rollouts yet; run `axial mora sample` first")
    train, _ = pools(config)
    missing = len({p.id for p in train} - {r["id"] for r in rows})
    if missing:
        raise AxialError(f"{path}: {missing} training prompts are not sampled yet; rerun `axial mora sample` "
                         "(it continues where it stopped)")
    return rows


def step_sample(config: MoraConfig, *, generate=None, judges=None) -> list[dict]:
    from axial.mora.sample import sample

    save_config(config)
    train, _ = pools(config)
    rows = sample(config, round_robin(train), config.folder / ROLLOUTS, generate=generate, judges=judges)
    console.print(f"sample: {len(rows)} prompts x k={config.k} rollouts in {config.folder / ROLLOUTS}")
    return rows


def step_isolate(config: MoraConfig) -> dict:
    from axial.mora.isolate import isolate

    save_config(config)
    result = isolate(config, rollouts(config), config.folder)
    console.print(f"isolate: {result['summary']['counts']} (thresholds: {config.threshold_mode}) -> "
                  f"{config.folder / 'isolate_scatter.png'}")
    return result


def isolated(config: MoraConfig) -> list[dict]:
    path = config.folder / "isolate.jsonl"
    if not path.exists():
        raise AxialError(f"{path}: not found; run `axial mora isolate` first")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def step_rewrite(config: MoraConfig, **injected) -> dict:
    from axial.mora.rewrite import rewrite

    save_config(config)
    summary = rewrite(config, rollouts(config), isolated(config), config.folder, **injected)
    console.print(f"rewrite: kept {summary['n_kept']} of {summary['n_single_reward_prompts']} single-reward "
                  f"prompts; rejections {summary['rejections_by_reason']}")
    return summary


def rewrite_decisions(config: MoraConfig) -> list[dict]:
    path = config.folder / "rewrites.jsonl"
    if not path.exists():
        raise AxialError(f"{path}: not found; run `axial mora rewrite` first")
    return read_jsonl_resumable(path)


def step_align(config: MoraConfig, arm: str = "rewritten") -> Path:
    from axial.mora.align import align

    save_config(config)
    decisions = rewrite_decisions(config) if arm == "rewritten" else []
    out = align(config, rollouts(config), decisions, arm, config.folder / "align" / arm)
    console.print(f"align ({arm}, {config.mode}, {config.method}): adapter in {out}")
    return out


def adapter_dir(config: MoraConfig, arm: str) -> Path:
    return config.folder / "align" / arm / f"{config.mode}_{config.method}" / "final"


def step_report(config: MoraConfig, *, generate_for=None, judges=None) -> dict:
    from axial.mora.report import report

    save_config(config)
    _, heldout = pools(config)
    adapters = {arm: adapter_dir(config, arm) for arm in ("rewritten", "original")}
    for arm, path in adapters.items():
        if not (path / "adapter_config.json").exists():
            raise AxialError(f"{path}: no adapter; run `axial mora align --arm {arm} --mode {config.mode}` first")
    result = report(config, heldout, adapters, config.folder / "report", generate_for=generate_for, judges=judges)
    console.print(f"report: {config.folder / 'report' / 'mora_report.md'}")
    return result


def run(config: MoraConfig) -> dict:
    """The whole chain; every step resumes from what is already in `out`."""
    step_sample(config)
    step_isolate(config)
    step_rewrite(config)
    for arm in ("original", "rewritten"):
        step_align(config, arm)
    return step_report(config)


def demo_config(out: str | Path) -> MoraConfig:
    """A small MORA run for `axial demo`: built-in axis sets, 8 prompts per axis, k=2, short answers, weak judge."""
    from axial.axes import axis_names

    return MoraConfig(out=str(out), prompts=[f"{a}=builtin:{a}" for a in axis_names()], n_train_per_axis=6,
                      n_heldout_per_axis=2, k=2, max_new_tokens=32, rewrite_max_new_tokens=48,
                      rewrite_candidates=1, chunk_prompts=6, max_steps=4, threshold_mode="quantile",
                      similarity_threshold=0.5, split="all")
