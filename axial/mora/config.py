"""MoraConfig: one typed config for the whole MORA chain (sample -> isolate -> rewrite -> align -> report).

Saved as `mora_config.json` in `out`; every step reads the same file, so `axial mora <step> CONFIG` and
`axial mora run CONFIG` always agree on what was done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from axial.config import Config
from axial.errors import AxialError

THRESHOLD_MODES = ("absolute", "quantile")
ENVELOPES = ("mean_best", "min_best")
MODES = ("sequential", "simultaneous")
METHODS = ("sft", "dpo")
ARMS = ("rewritten", "original")
CONFIG_FILE = "mora_config.json"


@dataclass
class MoraConfig(Config):
    """Everything one MORA experiment needs.

    prompts: data sources tagged with the axis they were drawn for, as "AXIS=SOURCE" (SOURCE is anything
      `axial.data.load_records` reads). From each source, `n_train_per_axis` prompts (in a seeded hash order)
      are the training pool and the next `n_heldout_per_axis` the held-out pool the report evaluates on; the two
      never overlap, so the report never scores a prompt that was trained on.
    judge: judge spec for every axis; "{axis}" is replaced by the axis name
      (e.g. "rm:benchmarks/results/rewards/{axis}_rm"). `judges` overrides it per axis.
    Thresholds (isolate): a prompt is single-reward when its best score (over k rollouts) is >= hi on exactly one
      axis and < lo on every other axis; multi-reward when >= hi on two or more axes; otherwise neither.
      threshold_mode="absolute": hi/lo are judge scores. threshold_mode="quantile": hi/lo are quantiles in
      [0, 1] of each axis's best-score distribution over the training pool (so axes on different judge scales
      are cut at the same rank).
    envelope: the multi-axis envelope of a prompt that a rewrite must raise: "mean_best" = mean over axes of the
      best score over its rollouts, "min_best" = the min over axes of it.
    """

    out: str = ""
    model: str = "embedded"
    dtype: str = "bf16"
    axes_file: str | None = None
    prompts: list[str] = field(default_factory=list)
    split: str = "train"
    n_train_per_axis: int = 70
    n_heldout_per_axis: int = 30
    first_turn_only: bool = True
    judge: str = "embedded"
    judges: dict = field(default_factory=dict)
    # sample
    k: int = 4
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 80
    batch_size: int = 16
    chunk_prompts: int = 8
    seed: int = 0
    # hf (transformers) or vllm (GPU; not covered by axial's tests); auto = hf: vLLM is never picked silently
    backend: str = "auto"
    # isolate
    threshold_mode: str = "quantile"
    hi: float = 0.6
    lo: float = 0.5
    envelope: str = "mean_best"
    # rewrite
    rewriter: str = "base"
    rewrite_template: str | None = None
    rewrite_max_new_tokens: int = 96
    rewrite_temperature: float = 0.7
    rewrite_candidates: int = 2
    similarity_encoder: str = "base"
    similarity_layer: int = -1
    similarity_threshold: float = 0.8
    min_gain: float = 0.0
    fresh_baseline: bool = True
    # align
    mode: str = "sequential"
    method: str = "sft"
    axis_order: list[str] = field(default_factory=list)
    learning_rate: float = 1e-4
    epochs: float = 1.0
    max_steps: int = -1
    train_batch_size: int = 4
    max_length: int = 256
    lora_r: int = 8
    lora_alpha: int = 16
    # report
    eval_max_new_tokens: int | None = None
    resamples: int = 2000

    def validate(self) -> None:
        if not self.out:
            raise AxialError("MoraConfig.out: required (the experiment folder)")
        for item in self.prompts:
            axis, sep, source = item.partition("=")
            if not sep or not axis.strip() or not source.strip():
                raise AxialError(f"MoraConfig.prompts: '{item}' must be AXIS=SOURCE (e.g. helpful=alpaca.json)")
        choices = {"threshold_mode": THRESHOLD_MODES, "envelope": ENVELOPES, "mode": MODES, "method": METHODS,
                   "dtype": ("auto", "bf16", "fp32"), "backend": ("auto", "hf", "vllm"),
                   "split": ("train", "all")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise AxialError(f"MoraConfig.{name}: must be one of {list(allowed)}, got {getattr(self, name)!r}")
        positive = {"n_train_per_axis": self.n_train_per_axis, "k": self.k, "max_new_tokens": self.max_new_tokens,
                    "batch_size": self.batch_size, "chunk_prompts": self.chunk_prompts,
                    "rewrite_max_new_tokens": self.rewrite_max_new_tokens,
                    "rewrite_candidates": self.rewrite_candidates, "train_batch_size": self.train_batch_size,
                    "max_length": self.max_length, "lora_r": self.lora_r, "lora_alpha": self.lora_alpha,
                    "resamples": self.resamples}
        for name, value in positive.items():
            if value < 1:
                raise AxialError(f"MoraConfig.{name}: must be >= 1, got {value}")
        if self.n_heldout_per_axis < 0:
            raise AxialError(f"MoraConfig.n_heldout_per_axis: must be >= 0, got {self.n_heldout_per_axis}")
        if self.k < 2 and self.method == "dpo":
            raise AxialError("MoraConfig.k: DPO pairs need at least 2 rollouts per prompt")
        for name in ("temperature", "rewrite_temperature", "learning_rate"):
            if not getattr(self, name) > 0:
                raise AxialError(f"MoraConfig.{name}: must be > 0, got {getattr(self, name)}")
        if not 0 < self.top_p <= 1:
            raise AxialError(f"MoraConfig.top_p: must be in (0, 1], got {self.top_p}")
        if self.hi < self.lo:
            raise AxialError(f"MoraConfig.hi: must be >= MoraConfig.lo ({self.hi} < {self.lo})")
        if self.threshold_mode == "quantile" and not (0 <= self.lo <= 1 and 0 <= self.hi <= 1):
            raise AxialError(f"MoraConfig.hi/lo: quantile thresholds must be in [0, 1], got hi={self.hi} "
                             f"lo={self.lo}")
        if not -1 <= self.similarity_threshold <= 1:
            raise AxialError(f"MoraConfig.similarity_threshold: a cosine in [-1, 1], got {self.similarity_threshold}")
        if self.max_steps < 1 and not self.epochs > 0:
            raise AxialError("MoraConfig.epochs: must be > 0 when max_steps is not set")
        if not isinstance(self.judges, dict) or not all(isinstance(v, str) for v in self.judges.values()):
            raise AxialError("MoraConfig.judges: a mapping axis -> judge spec string")

    @property
    def folder(self) -> Path:
        return Path(self.out)

    def axes(self):
        from axial.axes import load_axes

        return load_axes(self.axes_file)

    def axis_names(self) -> list[str]:
        names = [a.name for a in self.axes()]
        unknown = sorted(set(self.judges) - set(names))
        if unknown:
            raise AxialError(f"MoraConfig.judges: unknown axis name(s) {unknown}; axes are {names}")
        return names

    def stage_order(self) -> list[str]:
        names = self.axis_names()
        if not self.axis_order:
            return names
        unknown = [a for a in self.axis_order if a not in names]
        if unknown:
            raise AxialError(f"MoraConfig.axis_order: unknown axis name(s) {unknown}; axes are {names}")
        return list(self.axis_order)

    def judge_spec(self, axis: str) -> str:
        return self.judges.get(axis, self.judge).replace("{axis}", axis)

    def gen_max_new_tokens(self) -> int:
        return self.eval_max_new_tokens or self.max_new_tokens


def load_config(path: str | Path, overrides: list[str] | None = None) -> MoraConfig:
    """A MoraConfig from JSON (a config file, or an experiment folder holding mora_config.json)."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    if not path.exists():
        raise AxialError(f"mora config {path}: not found")
    return MoraConfig.load(path).with_overrides(overrides)
