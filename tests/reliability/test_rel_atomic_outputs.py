"""Outputs survive a kill in the middle of being rewritten (issue 15, item 4).

Each case writes an output once, then reruns the writer with different content and kills the process the
moment the file is opened for writing (see rel_helpers). The file must still hold the first, complete
version, and a normal rerun must then replace it. Before the fix every one of these was left at 0 bytes.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest
from rel_helpers import killed_while_writing

import axial

AXIAL = Path(axial.__file__).resolve().parent  # the package under test (a --baseline probe run scans the old one)


def _report(name: str) -> dict:
    return {"variants": [{"name": name, "source": "base", "experts": [], "model": "m", "dtype": "fp32"}],
            "statistics": "bootstrap", "judges": {}, "benches": {}, "results": {name: {}},
            "differences_vs_first": {}}


def _eval_report(out: Path, version: int):
    from axial.evaluate.report import write_report

    return lambda: write_report(_report(f"v{version}"), out)


def _config(out: Path, version: int):
    from axial.experts.config import ExpertConfig

    return lambda: ExpertConfig(axis="helpful", out=f"run-v{version}").save(out / "expert_config.json")


def _mocae_meta(out: Path, version: int):
    def write():
        from axial.mocae.router import MoCaERouter
        from axial.mocae.store import save_router

        router = MoCaERouter(8, ["a", "b"], 2)
        save_router(router, out, expert_dirs=["x", "y"], base_model=f"model-v{version}", top_k=0, importance=None)
    return write


def _adapter_config(out: Path, version: int):
    def write():
        import torch

        from axial.mixture.experts import Expert, LoraFactors, save_expert

        torch.manual_seed(0)
        factors = {"model.layers.0.self_attn.q_proj": LoraFactors(A=torch.randn(2, 8), B=torch.randn(8, 2),
                                                                   scaling=1.0)}
        save_expert(Expert(name="e", factors=factors), out, base_model_name=f"model-v{version}")
    return write


CASES = {  # target file -> (writer factory, how to read back the version it holds)
    "report.json": (_eval_report, lambda p: json.loads(p.read_text())["variants"][0]["name"]),
    "report.md": (_eval_report, lambda p: re.search(r"\*\*(v\d)\*\*", p.read_text())[1]),
    "expert_config.json": (_config, lambda p: json.loads(p.read_text())["out"].split("-")[-1]),
    "mocae.json": (_mocae_meta, lambda p: json.loads(p.read_text())["base_model"].split("-")[-1]),
    "adapter_config.json": (_adapter_config,
                            lambda p: json.loads(p.read_text())["base_model_name_or_path"].split("-")[-1]),
}


@pytest.mark.parametrize("target", sorted(CASES))
def test_kill_during_rewrite_keeps_the_previous_file(target, tmp_path, observe):
    make, version_of = CASES[target]
    make(tmp_path, 1)()
    assert version_of(tmp_path / target) == "v1"
    sig = killed_while_writing(target, make(tmp_path, 2))
    size = (tmp_path / target).stat().st_size
    observe(f"killed by {signal.Signals(sig).name} mid-write; {target} after the kill: {size} bytes, "
            f"version {version_of(tmp_path / target) if size else 'none (empty)'}")
    assert version_of(tmp_path / target) == "v1", f"{target} was torn by the kill"
    make(tmp_path, 2)()  # and the rerun that is not killed replaces it
    assert version_of(tmp_path / target) == "v2"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-") and p.name.endswith(target)
                and p.stat().st_size], "the killed attempt's partial file is still there after a rerun"


def test_eval_store_meta_killed_on_first_write_resumes(tmp_path, observe):
    from axial.evaluate.store import ItemStore

    path = tmp_path / "items" / "bench.jsonl"
    settings = {"model": "m", "max_new_tokens": 8}
    killed_while_writing("bench.meta.json", lambda: ItemStore(path).open(settings))
    meta = path.parent / "bench.meta.json"
    state = f"{meta.stat().st_size}-byte meta file" if meta.exists() else "no meta file"
    observe(f"after the kill: {state}")
    store = ItemStore(path).open(settings)  # no JSONDecodeError on a half-written meta file
    store.append([{"id": "a", "x": 1}])
    assert json.loads(store.meta_path.read_text()) == settings
    observe(f"after the kill: {state}; the rerun opened the store and appended")


# Raw writes that are allowed, each with the reason it is safe. Anything else that writes a file under axial/
# must go through axial.io (temporary file + rename).
ALLOWED = {
    ("evaluate/store.py", 'open(self.path, "a"'): "append-only item log, fsynced; a cut-off last line is "
                                                   "dropped when read",
    ("evaluate/store.py", 'open(self.path, "r+b")'): "truncates a cut-off last line on resume",
    ("evaluate/store.py", 'open(self.path, "ab")'): "restores the final newline on resume",
    ("io.py", ""): "the atomic writers and the resumable JSONL log helpers themselves",
    ("experts/train.py", 'open(self.path, "a")'): "train_log.jsonl, append-only; repaired on resume",
    ("experts/train.py", "save_pretrained(str(out)"): "adapter files; axial_expert.json, written after them "
                                                      "atomically, marks the expert complete",
    ("models.py", "save_pretrained(tmp"): "into a temporary folder renamed when complete",
    ("models.py", '"AXIAL_SOURCE").write_text'): "inside the same temporary folder",
    ("mixture/testing.py", ""): "test fixtures (random adapters), not user outputs",
    ("testing.py", ""): "test fixtures (tiny model folder), not user outputs",
}
_WRITE = re.compile(r"\.write_text\(|\.write_bytes\(|\bopen\([^)]*['\"](?:w|a|r\+|x)b?['\"]|\.open\(['\"][wax]|"
                    r"json\.dump\(|\.savefig\(|\bsave_file\(|\.save_pretrained\(|torch\.save\(|\.to_(?:csv|json|"
                    r"parquet)\(")


def _inside_atomic_block(lines: list[str], index: int) -> bool:
    """Whether line `index` sits (at any depth) inside `with atomic_output(...)` / `with atomic_dir(...)`."""
    indent = len(lines[index]) - len(lines[index].lstrip())
    for line in reversed(lines[:index]):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        depth = len(line) - len(stripped)
        if depth < indent:
            if stripped.startswith("with atomic_output(") or stripped.startswith("with atomic_dir("):
                return True
            indent = depth
            if depth == 0:
                return False
    return False


def test_every_output_goes_through_axial_io(observe):
    offenders = []
    for path in sorted(AXIAL.rglob("*.py")):
        rel = path.relative_to(AXIAL).as_posix()
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            code = line.split("#", 1)[0]
            if not _WRITE.search(code):
                continue
            if any(rel == f and snippet in code for f, snippet in ALLOWED):
                continue
            # Writers that take a file name write to axial.io's temporary path, renamed when they finish.
            if _inside_atomic_block(lines, index):
                continue
            offenders.append(f"axial/{rel}:{index + 1}: {line.strip()}")
    observe(f"{len(offenders)} in-place writes outside axial/io.py ({len(ALLOWED)} allowed, each with its reason)")
    assert not offenders, "in-place writes (use axial.io):\n" + "\n".join(offenders)
