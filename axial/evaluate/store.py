"""Append-only per-item JSONL with resume: a killed run continues with no item lost or done twice."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from axial.errors import AxialError, DataError
from axial.io import atomic_write_json


class ItemStore:
    """One JSONL file of finished items keyed by "id", plus a sidecar JSON with the settings that made them.

    A resumed run must not mix items made under different settings (another model, max_new_tokens, judge...):
    `open(settings)` compares them with the sidecar and refuses a mismatch instead of silently mixing.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.meta_path = self.path.with_suffix(".meta.json")
        self._records: dict[str, dict[str, Any]] = {}

    def open(self, settings: dict[str, Any]) -> ItemStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        settings = json.loads(json.dumps(settings, default=str))
        if self.meta_path.exists():
            try:
                old = json.loads(self.meta_path.read_text())
            except json.JSONDecodeError as e:
                raise DataError(f"corrupt settings file ({e.msg}); use a new --out folder, or delete it together "
                                f"with {self.path.name} to redo those items", path=str(self.meta_path),
                                line=e.lineno) from None
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            if diff:
                raise AxialError(
                    f"{self.path}: was made with different settings ({', '.join(diff)}: "
                    f"{ {k: old.get(k) for k in diff} } -> { {k: settings.get(k) for k in diff} }); "
                    "use a new --out folder or delete that file to redo it")
        else:
            atomic_write_json(self.meta_path, settings, sort_keys=True)
        self._load()
        return self

    def _load(self) -> None:
        self._records = {}
        if not self.path.exists():
            return
        lines = self.path.read_bytes().splitlines(keepends=True)
        keep = 0  # bytes of intact lines
        for lineno, line in enumerate(lines, 1):
            complete = line.endswith(b"\n")
            try:
                rec = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                if not complete:  # the last write was cut off by a kill: drop it, that item is redone
                    break
                raise AxialError(f"{self.path}:{lineno}: corrupt JSON line in the middle of the file") from None
            if rec is not None:
                if not isinstance(rec, dict) or "id" not in rec:
                    raise AxialError(f"{self.path}:{lineno}: record without 'id'")
                self._records[str(rec["id"])] = rec
            keep += len(line)
        size = self.path.stat().st_size
        if keep < size:
            with open(self.path, "r+b") as f:
                f.truncate(keep)
        if keep and not lines[-1].endswith(b"\n") and keep == size:
            with open(self.path, "ab") as f:
                f.write(b"\n")

    def __contains__(self, item_id: str) -> bool:
        return str(item_id) in self._records

    def __len__(self) -> int:
        return len(self._records)

    def get(self, item_id: str) -> dict[str, Any]:
        return self._records[str(item_id)]

    def missing(self, ids: Iterable[str]) -> list[str]:
        return [i for i in ids if str(i) not in self._records]

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Write finished items and fsync, so a kill right after loses nothing already reported done."""
        lines = []
        for rec in records:
            key = str(rec["id"])
            if key in self._records:
                raise AxialError(f"{self.path}: item {key} already recorded")
            self._records[key] = rec
            lines.append(json.dumps(rec, ensure_ascii=False) + "\n")
        if not lines:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())

    def records(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        return [self._records[str(i)] for i in ids]
