"""ExpertConfig: everything that defines one axis expert, saved beside the adapter as expert_config.json."""

from __future__ import annotations

from dataclasses import dataclass, field

from axial.config import Config
from axial.errors import AxialError

METHODS = ("sft", "dpo")
DTYPES = ("auto", "bf16", "fp32")
# Axis name used for one adapter trained on the union of several axes' data (the collapse report's baseline).
MIXED = "mixed"
# Fields that change what is trained; a rerun into a folder with checkpoints must agree on all of them.
TRAINING_FIELDS = ("axis", "data", "model", "method", "inject", "split", "limit", "lora_r", "lora_alpha",
                   "lora_dropout", "target_modules", "learning_rate", "epochs", "max_steps", "batch_size",
                   "grad_accum", "max_length", "warmup_ratio", "weight_decay", "lr_scheduler", "beta", "seed",
                   "init_adapter", "dtype", "skip_invalid", "dedupe")


@dataclass
class ExpertConfig(Config):
    """One LoRA expert for one axis, trained with TRL on the frozen base.

    `inject=True` (AlignX stage 1) puts the axis's injection text in the system turn of every training prompt;
    the expert is used WITHOUT it at inference, so what it learned must live in the adapter, tied to the axis.
    """

    axis: str = ""
    data: list[str] = field(default_factory=list)
    out: str = ""
    model: str = "embedded"
    method: str = "sft"
    inject: bool = True
    split: str = "train"
    limit: int | None = None
    # LoRA: alpha = 2r is the usual starting point; all linear layers cost little more than attention-only on a
    # 135M model and learn more per step.
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: str = "all-linear"
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 256
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"
    beta: float = 0.1
    val_size: int = 32
    save_steps: int = 25
    save_total_limit: int = 2
    seed: int = 0
    init_adapter: str | None = None
    # Skip (and list in axial_expert.json) records that cannot train, e.g. an empty reply, instead of stopping.
    skip_invalid: bool = False
    # Drop records repeating an earlier record's content (same axis, prompt and responses). Duplicates are
    # always counted in axial_expert.json; without dedupe they are trained on as often as they appear.
    dedupe: bool = False
    dtype: str = "auto"
    gradient_checkpointing: bool = False
    overwrite: bool = False

    def validate(self) -> None:
        if not self.axis:
            raise AxialError("ExpertConfig.axis: required (one of the registered axes, e.g. helpful)")
        if self.axis != MIXED:
            from axial.axes import axis_names, get_axis

            try:
                get_axis(self.axis)
            except AxialError as e:
                raise AxialError(f"ExpertConfig.axis: unknown axis '{self.axis}'; known: {axis_names()}") from e
        if not self.out:
            raise AxialError("ExpertConfig.out: required (output folder for the adapter)")
        if self.method not in METHODS:
            raise AxialError(f"ExpertConfig.method: must be one of {list(METHODS)}, got '{self.method}'")
        if self.dtype not in DTYPES:
            raise AxialError(f"ExpertConfig.dtype: must be one of {list(DTYPES)}, got '{self.dtype}'")
        if self.split not in ("train", "test", "all"):
            raise AxialError(f"ExpertConfig.split: must be train, test or all, got '{self.split}'")
        if self.split == "test":
            raise AxialError("ExpertConfig.split: 'test' is the evaluation half; training on it would evaluate "
                             "on training data. Use train (or all for data no benchmark uses).")
        positive = {"lora_r": self.lora_r, "lora_alpha": self.lora_alpha, "batch_size": self.batch_size,
                    "grad_accum": self.grad_accum, "max_length": self.max_length, "save_steps": self.save_steps,
                    "save_total_limit": self.save_total_limit}
        for name, value in positive.items():
            if value < 1:
                raise AxialError(f"ExpertConfig.{name}: must be >= 1, got {value}")
        if self.limit is not None and self.limit < 1:
            raise AxialError(f"ExpertConfig.limit: must be >= 1 or null, got {self.limit}")
        if not self.learning_rate > 0:
            raise AxialError(f"ExpertConfig.learning_rate: must be > 0, got {self.learning_rate}")
        if not 0 <= self.lora_dropout < 1:
            raise AxialError(f"ExpertConfig.lora_dropout: must be in [0, 1), got {self.lora_dropout}")
        if not 0 <= self.warmup_ratio < 1:
            raise AxialError(f"ExpertConfig.warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if self.max_steps < 1 and not self.epochs > 0:
            raise AxialError("ExpertConfig.epochs: must be > 0 when max_steps is not set")
        if self.val_size < 0:
            raise AxialError(f"ExpertConfig.val_size: must be >= 0, got {self.val_size}")
        if self.method == "dpo" and not self.beta > 0:
            raise AxialError(f"ExpertConfig.beta: must be > 0 for DPO, got {self.beta}")
        if not self.target_modules.strip():
            raise AxialError("ExpertConfig.target_modules: empty (use all-linear or a comma list of module names)")

    def training_fields(self) -> dict:
        return {k: getattr(self, k) for k in TRAINING_FIELDS}
