"""Crash-safe output files: write to a temporary file in the same folder, fsync, then rename over the target.

A rename within one filesystem is atomic (POSIX `rename`, Windows `MoveFileEx` through `os.replace`), so a
reader — or a rerun after a kill or a power cut — sees either the previous complete file or the new complete
file, never a truncated one. Every output axial writes goes through here. Append-only logs that resume are
the exception: they are appended to (`append_jsonl`, fsynced) and repair a cut-off last line when read back
(`read_jsonl_resumable`; `axial.evaluate.store.ItemStore` and `train_log.jsonl` do the same their own way).

A kill mid-write leaves a hidden `.tmp-<hex>-<name>` file beside the target; it is never read, and a later
successful write of the same target removes such leftovers once they are an hour old (younger ones may belong
to another process writing the same file right now).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from axial.errors import DataError

_PREFIX = ".tmp-"
_LEFTOVER_AGE_S = 3600


def _temp_name(path: Path) -> Path:
    # The target's name stays at the end so that writers choosing a format by suffix (savefig) still do.
    return path.with_name(f"{_PREFIX}{uuid.uuid4().hex[:12]}-{path.name}")


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_leftovers(path: Path) -> None:
    cutoff = time.time() - _LEFTOVER_AGE_S
    for old in path.parent.glob(f"{_PREFIX}{'?' * 12}-{glob.escape(path.name)}"):
        with contextlib.suppress(OSError):
            if old.lstat().st_mtime < cutoff:
                shutil.rmtree(old) if old.is_dir() else old.unlink()


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` for a writer that takes a file name (savefig, save_file, ...);
    when the block ends without an exception, the file is fsynced and renamed onto `path`. On an exception
    the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    _remove_leftovers(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    with atomic_output(path) as tmp:
        # O_EXCL: the name is fresh; mode 0o666 lets the umask decide, as a plain open() would.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return path


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2, sort_keys: bool = False,
                      default=None, ensure_ascii: bool = True) -> Path:
    """`obj` as JSON with a final newline. The text is built before anything is written, so an object that
    cannot be serialised leaves the old file untouched."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default, ensure_ascii=ensure_ascii)
    return atomic_write_text(path, text + "\n")


def atomic_write_lines(path: str | Path, lines: list[str]) -> Path:
    """A whole JSONL (or text) file from lines without their newlines."""
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path` to fill; when the block ends without an exception it is renamed
    to `path`, which must not exist or be empty. A kill part way leaves `path` as it was (absent or empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    tmp.mkdir()
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb+") as fh:
                    os.fsync(fh.fileno())
        if path.is_dir():
            path.rmdir()  # only an empty folder: OSError otherwise, and nothing is lost
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)
    _remove_leftovers(path)


def read_jsonl_resumable(path: str | Path) -> list[dict]:
    """The rows of an append-only JSONL file whose writer may have been killed.

    Every row is written as one line ending in a newline, so only a last line without its newline can be a
    crash mid-write: it is cut off the file (that row is then redone), so the next append starts on a fresh
    line. Any other unreadable line is corruption and an error naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    rows, offset = [], 0
    for lineno, line in enumerate(raw.split(b"\n"), 1):
        if offset + len(line) == len(raw):  # the last piece: "" after a final newline, else a cut-off line
            if line:
                with open(path, "r+b") as f:
                    f.truncate(offset)
            break
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"corrupt line: {e.msg}", path=str(path), line=lineno) from e
        offset += len(line) + 1
    return rows


def append_jsonl(path: str | Path, rows) -> None:
    """Append rows, each as one line, flushed and fsynced so a later crash cannot take them back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
