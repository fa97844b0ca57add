"""EvalConfig: everything that decides an evaluation's numbers, saved as DIR/eval_config.json."""

from __future__ import annotations

from dataclasses import dataclass, field

from axial.config import Config
from axial.errors import AxialError

SPLIT_CHOICES = ("test", "all")


@dataclass
class EvalConfig(Config):
    benches: list[str] = field(default_factory=lambda: ["truthfulqa_mc"])
    # bench (or family: "truthfulqa" serves truthfulqa_mc and truthfulqa_gen) -> file path or HF id.
    data: dict[str, str] = field(default_factory=dict)
    split: str = "test"  # default for every bench: the hash-split test half, or "all"
    splits: dict[str, str] = field(default_factory=dict)  # per-bench override of `split`
    limit: int | None = None  # deterministic hash-ordered subset per bench (same items for every variant)
    limits: dict[str, int] = field(default_factory=dict)  # per-bench override of `limit`
    seed: int = 0
    # axis -> judge spec (axial.rewards.load_judge); an axis without one uses "embedded", labelled weak.
    judges: dict[str, str] = field(default_factory=dict)
    judge: bool = True  # False: only generate and store responses; a later run with judges scores them
    # axis -> JSON written by `axial validate-judge --out` for that axis's judge: reused instead of validating
    # again (validating a generative judge costs as much as judging).
    judge_validation: dict[str, str] = field(default_factory=dict)
    validate_judges: bool = True  # run axial.rewards.validate on judges that carry no validation
    judge_validation_limit: int | None = 200
    max_new_tokens: int = 256
    harmless_max_new_tokens: int = 128
    # truthfulqa_gen stops at the first blank line (lm-eval's `until`); this caps a completion that never does.
    truthfulqa_max_new_tokens: int = 64
    batch_size: int = 8  # generation batch
    mc_batch_size: int = 32  # candidate answers scored per forward pass
    judge_batch_size: int = 16
    # A pairwise preference p (both orders averaged) with |p - 0.5| <= tie_margin counts as a tie (half a win).
    tie_margin: float = 0.05
    bootstrap_resamples: int = 2000

    def validate(self) -> None:
        from axial.evaluate.benches import BENCHES

        if not self.benches:
            raise AxialError("EvalConfig.benches: empty; choose from " + ", ".join(BENCHES))
        for b in self.benches:
            if b not in BENCHES:
                raise AxialError(f"EvalConfig.benches: unknown bench '{b}'; choose from {', '.join(BENCHES)}")
        if len(set(self.benches)) != len(self.benches):
            raise AxialError(f"EvalConfig.benches: duplicate entries in {self.benches}")
        for where, value in [("split", self.split), *((f"splits[{k}]", v) for k, v in self.splits.items())]:
            if value not in SPLIT_CHOICES:
                raise AxialError(f"EvalConfig.{where}: '{value}'; expected one of {', '.join(SPLIT_CHOICES)}")
        for k in self.splits:
            if k not in BENCHES:
                raise AxialError(f"EvalConfig.splits: unknown bench '{k}'")
        for where, value in [("limit", self.limit), *((f"limits[{k}]", v) for k, v in self.limits.items())]:
            if value is not None and (not isinstance(value, int) or value < 1):
                raise AxialError(f"EvalConfig.{where}: must be a whole number >= 1, got {value!r}")
        for k in self.limits:
            if k not in BENCHES:
                raise AxialError(f"EvalConfig.limits: unknown bench '{k}'")
        for name in ("max_new_tokens", "harmless_max_new_tokens", "truthfulqa_max_new_tokens", "batch_size",
                     "mc_batch_size",
                     "judge_batch_size"):
            if getattr(self, name) < 1:
                raise AxialError(f"EvalConfig.{name}: must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.tie_margin < 0.5:
            raise AxialError(f"EvalConfig.tie_margin: must be in [0, 0.5), got {self.tie_margin}")
        if self.bootstrap_resamples < 100:
            raise AxialError(f"EvalConfig.bootstrap_resamples: use at least 100, got {self.bootstrap_resamples}")

    def split_for(self, bench: str) -> str:
        return self.splits.get(bench, self.split)

    def limit_for(self, bench: str) -> int | None:
        return self.limits.get(bench, self.limit)

    def source_for(self, bench: str) -> str | None:
        family = bench.split("_")[0]
        return self.data.get(bench) or self.data.get(family)
