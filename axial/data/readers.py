"""`load_records`: any supported dataset (local file or Hugging Face hub id) as typed records.

Local files are parsed here rather than through `datasets`, because `datasets` cannot say on which line or row
a record is malformed, and every error must name file, line and field. Line numbers are those an editor
shows: the JSONL line, the CSV line where the row starts (the header is line 1), and for a JSON list the line
where the item starts (the message also gives the item's index). Parquet files and hub datasets have no
lines, so their "line" is the 1-based row number.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axial.data.kinds import KINDS, Kind, Row, RowError, detect_kind
from axial.data.records import Record, content_key
from axial.data.splits import check_split, record_split
from axial.errors import AxialError, DataError
from axial.io import atomic_write_lines

# owner/name, owner/name:split or owner/name:config:split
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w.-]+){0,2}$")
_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
_ITEM = re.compile(r"^\(item \d+\) ")


@dataclass
class LoadResult:
    records: list[Record]
    kind: str
    source: str
    invalid: list[DataError] = field(default_factory=list)
    # Records kept as they are but worth knowing about (empty responses, merged dialogue turns).
    notes: list[DataError] = field(default_factory=list)
    # Records with the same content as an earlier one (see axial.data.records.content_key), each naming the
    # first copy; dropped when loaded with dedupe=True, else kept.
    duplicates: list[DataError] = field(default_factory=list)
    deduped: bool = False
    split: str = "all"
    test_fraction: float = 0.5
    n_other_split: int = 0
    stopped_at_limit: int | None = None

    @property
    def n_invalid(self) -> int:
        return len(self.invalid)

    @property
    def n_duplicates(self) -> int:
        return len(self.duplicates)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def summary(self, max_errors: int = 5) -> str:
        record_type = KINDS[self.kind].record_type.__name__
        lines = [f"source: {self.source}", f"kind: {self.kind} ({record_type})",
                 f"records: {len(self.records)}"]
        if self.split != "all":
            lines.append(f"split: {self.split} (hash of the prompt text, test fraction {self.test_fraction}); "
                         f"{self.n_other_split} valid records are in the other split")
        if self.stopped_at_limit is not None:
            lines.append(f"stopped at limit={self.stopped_at_limit}; the rest of the source was not read")
        lines.append(f"invalid: {self.n_invalid}" + (" (skipped)" if self.invalid else ""))
        lines += _listed(self.invalid, max_errors)
        lines.append(f"duplicates: {self.n_duplicates}" + (
            "" if not self.duplicates else " (dropped)" if self.deduped else " (kept; dedupe drops them)"))
        lines += _listed(self.duplicates, max_errors)
        if self.notes:
            reasons = Counter(_ITEM.sub("", n.reason) for n in self.notes)
            lines.append(f"notes: {len(self.notes)} (records kept: "
                         + "; ".join(f"{c}x {r}" for r, c in reasons.most_common()) + ")")
            lines += _listed(self.notes, max_errors)
        return "\n".join(lines)


def _listed(errors: list[DataError], n: int) -> list[str]:
    out = [f"  {e}" for e in errors[:n]]
    if len(errors) > n:
        out.append(f"  ... and {len(errors) - n} more")
    return out


@dataclass
class _Raw:
    line: int
    data: dict[str, Any] | None = None
    error: DataError | None = None
    label: str = ""  # "item 3" for JSON lists, so messages give the index as well as the line


def load_records(source: str | Path, kind: str | None = None, *, skip_invalid: bool = False,
                 split: str | None = None, limit: int | None = None, test_fraction: float = 0.5,
                 axis: str | None = None, dedupe: bool = False) -> LoadResult:
    """Read `source` (a .json/.jsonl/.csv/.parquet file, optionally .gz, or a hub id owner/name[:config]:split).

    kind: one of KINDS; detected from the first record's fields when None.
    skip_invalid: skip malformed records (each is counted and kept in `.invalid`) instead of raising the
        first as a DataError naming file, line and field.
    split: "train" | "test" | "all" (None = all): keep one side of the deterministic hash split of
        `axial.data.splits` (by question / first user message); records of the other side are counted.
    limit: stop after this many records.
    axis: the axis recorded on every record (default: the record's own axis, else the dataset's axis).
    dedupe: drop records whose content repeats an earlier record's (they are always counted and listed in
        `.duplicates`, naming the line of the first copy; kept unless dedupe).
    """
    split = check_split(split)
    if limit is not None and limit < 1:
        raise AxialError(f"limit must be a positive number of records, got {limit}")
    if kind is not None and kind not in KINDS:
        raise AxialError(f"unknown kind '{kind}'; known kinds: {', '.join(KINDS)}")
    display, rows = _open_source(source)

    # Detect the kind from the first row that parses; rows before it (unparseable lines) are handled below.
    head: list[_Raw] = []
    for raw in rows:
        head.append(raw)
        if raw.data is not None:
            break
    if not head:
        raise DataError("contains no records", path=display)
    spec = KINDS[kind] if kind else _detect(head[-1], display, head[0])

    result = LoadResult([], spec.name, display, split=split, test_fraction=test_fraction, deduped=dedupe)
    first_line: dict[str, int] = {}
    for index, raw in enumerate(itertools.chain(head, rows)):
        if limit is not None and len(result.records) >= limit:
            result.stopped_at_limit = limit
            break
        converted = _convert(spec, raw, index, display, axis)
        if isinstance(converted, DataError):
            if not skip_invalid:
                raise converted
            result.invalid.append(converted)
            continue
        record, notes = converted
        if split != "all" and record_split(record, test_fraction) != split:
            result.n_other_split += 1
            continue
        key = content_key(record)
        if key in first_line:
            prefix = f"({raw.label}) " if raw.label else ""
            result.duplicates.append(DataError(f"{prefix}duplicate of line {first_line[key]}", path=display,
                                               line=raw.line))
            if dedupe:
                continue
        else:
            first_line[key] = raw.line
        result.records.append(record)
        result.notes.extend(notes)
    return result


def _detect(raw: _Raw, display: str, first: _Raw) -> Kind:
    if raw.data is None:  # not one row parsed
        raise first.error
    spec = detect_kind(raw.data)
    if spec is None:
        raise DataError(f"cannot tell the dataset kind from fields {sorted(raw.data)}; pass kind= (--kind), "
                        f"one of: {', '.join(KINDS)}", path=display, line=raw.line)
    return spec


def _convert(spec: Kind, raw: _Raw, index: int, display: str,
             axis: str | None) -> tuple[Record, list[DataError]] | DataError:
    """The record and its notes, or the error that makes it invalid."""
    if raw.error is not None:
        return raw.error
    prefix = f"({raw.label}) " if raw.label else ""
    row = Row(raw.data, default_id=f"{spec.name}-{index}", source=display)
    try:
        record = spec.convert(row, axis or spec.axis)
    except RowError as e:
        return DataError(f"{prefix}{e.message}", path=display, line=raw.line, field=e.field)
    return record, [DataError(f"{prefix}{msg}", path=display, line=raw.line, field=f) for f, msg in row.notes]


# ---- sources ----------------------------------------------------------------------------------------------

def _open_source(source: str | Path) -> tuple[str, Iterator[_Raw]]:
    display = str(source)
    path = Path(source)
    if path.is_dir():
        raise AxialError(f"{display}: is a folder; give a .json/.jsonl/.csv/.parquet file or a hub id")
    if path.exists():
        return display, _file_rows(path, display)
    suffix = path.suffix.lower() if path.suffix.lower() != ".gz" else Path(path.stem).suffix.lower()
    if suffix in _SUFFIXES or not _HUB_ID.match(display):
        raise AxialError(f"{display}: no such file (and not a hub id of the form owner/name[:config]:split)")
    return display, _hub_rows(display)


def _file_rows(path: Path, display: str) -> Iterator[_Raw]:
    gz = path.suffix.lower() == ".gz"
    suffix = (Path(path.stem).suffix if gz else path.suffix).lower()
    if suffix not in _SUFFIXES:
        raise AxialError(f"{display}: unsupported file type '{suffix or path.name}'; "
                         f"expected one of {', '.join(_SUFFIXES)} (optionally .gz)")
    try:
        data = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read: {e}", path=display) from None
    if suffix == ".parquet":
        return _parquet_rows(data, display)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        # The line and column an editor shows (columns in bytes, since the line is not valid text).
        line_start = data.rfind(b"\n", 0, e.start) + 1
        raise DataError(f"not UTF-8 text (byte 0x{data[e.start]:02x} at column {e.start - line_start + 1}); "
                        "re-save the file as UTF-8", path=display, line=data.count(b"\n", 0, e.start) + 1) from None
    if suffix == ".csv":
        return _csv_rows(text, display)
    if suffix == ".json" and text.lstrip().startswith("["):
        return _json_list_rows(text, display)
    if suffix == ".json":
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None  # one object per line: JSONL under another name (common for hub exports)
        if isinstance(whole, dict):
            return iter([_object(whole, 1, display)])
    return _jsonl_rows(text, display)


def _jsonl_rows(text: str, display: str) -> Iterator[_Raw]:
    # split("\n"), not splitlines(): JSON strings may hold raw U+2028 / U+0085, which splitlines breaks on.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            yield _Raw(lineno, error=DataError(f"invalid JSON: {e.msg} (column {e.colno})", path=display,
                                               line=lineno))
            continue
        yield _object(value, lineno, display)


def _object(value: Any, line: int, display: str, label: str = "") -> _Raw:
    if isinstance(value, dict):
        return _Raw(line, data=value, label=label)
    where = f"({label}) " if label else ""
    return _Raw(line, error=DataError(f"{where}expected a JSON object, got {type(value).__name__}",
                                      path=display, line=line), label=label)


_WS = re.compile(r"\s*")


def _json_list_rows(text: str, display: str) -> Iterator[_Raw]:
    # Decode item by item (json's raw_decode) to know the line each item starts on; json.load alone would not.
    decoder = json.JSONDecoder()
    pos = _WS.match(text, text.index("[") + 1).end()
    line, line_pos = 1, 0
    index = 0
    if text.startswith("]", pos):
        pos = len(text)
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise DataError(f"(item {index}) invalid JSON: {e.msg} (column {e.colno}); a JSON list cannot be "
                            "read past a syntax error, so this stops even with skip_invalid", path=display,
                            line=e.lineno) from None
        line += text.count("\n", line_pos, pos)
        line_pos = pos
        yield _object(value, line, display, label=f"item {index}")
        pos = _WS.match(text, end).end()
        if text.startswith(",", pos):
            pos = _WS.match(text, pos + 1).end()
            index += 1
            continue
        if text.startswith("]", pos) and not text[pos + 1:].strip():
            return
        raise DataError(f"(item {index}) expected ',' or a final ']' after the item",
                        path=display, line=text.count("\n", 0, pos) + 1)


def _csv_rows(text: str, display: str) -> Iterator[_Raw]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as e:
        raise DataError(f"bad CSV header: {e}", path=display, line=1) from None
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise DataError(f"CSV header repeats column name(s) {repeated}", path=display, line=1)
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield _Raw(start, error=DataError(f"bad CSV row: {e}", path=display, line=start))
            start = reader.line_num + 1
            continue
        if values:  # [] is a blank line; a row of empty cells still goes through validation
            if len(values) != len(header):
                yield _Raw(start, error=DataError(f"row has {len(values)} columns, the header has "
                                                  f"{len(header)}", path=display, line=start))
            else:
                yield _Raw(start, data=dict(zip(header, values, strict=True)))
        start = reader.line_num + 1


def _parquet_rows(data: bytes, display: str) -> Iterator[_Raw]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except Exception as e:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"cannot read parquet: {e}", path=display) from None
    for i, row in enumerate(table.to_pylist(), 1):
        yield _Raw(i, data=row)


def _hub_rows(hub_id: str) -> Iterator[_Raw]:
    import datasets

    parts = hub_id.split(":")
    repo = parts[0]
    config = parts[1] if len(parts) == 3 else None
    hub_split = parts[-1] if len(parts) > 1 else None
    try:
        ds = datasets.load_dataset(repo, config, split=hub_split)
    except Exception as e:  # network, auth, missing repo/config/split: datasets raises many unrelated types
        raise AxialError(
            f"could not load '{hub_id}' from the Hugging Face hub ({type(e).__name__}: {str(e)[:300]}). "
            "Check the id (owner/name, owner/name:split or owner/name:config:split), the network connection "
            "(HF_HUB_OFFLINE=1 uses only the local cache, without retries), and HF_TOKEN for gated "
            "datasets.") from None
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:
            raise AxialError(f"'{hub_id}' has splits {list(ds)}; choose one as {repo}:SPLIT")
        ds = next(iter(ds.values()))
    for i, row in enumerate(ds, 1):
        yield _Raw(i, data=row)


def write_records(records: list[Record], path: str | Path) -> Path:
    """Write records as axial's own JSONL (one `to_dict()` per line), readable back with load_records."""
    return atomic_write_lines(path, [json.dumps(r.to_dict(), ensure_ascii=False) for r in records])
