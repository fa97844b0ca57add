"""Duplicate records, non-UTF-8 input and .parquet.gz (issue 15, item 7)."""

from __future__ import annotations

import gzip
import json

import pytest

from axial.data import load_records
from axial.errors import DataError


def _alpaca(i: int) -> dict:
    return {"instruction": f"Say {i}", "output": f"{i}!"}


@pytest.fixture
def twenty_copies(tmp_path):
    path = tmp_path / "copies.jsonl"
    rows = [_alpaca(0)] * 20 + [_alpaca(1)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_duplicates_are_counted_and_listed(twenty_copies, observe):
    result = load_records(twenty_copies)
    observe(f"{len(result)} records kept, n_duplicates {result.n_duplicates}, first listed: "
            f"`{str(result.duplicates[0]).replace(str(twenty_copies.parent), '...')}`")
    assert len(result) == 21 and result.n_duplicates == 19  # kept by default, but never silently
    summary = result.summary()
    assert "duplicates: 19 (kept; dedupe drops them)" in summary
    assert f"{twenty_copies}:2: duplicate of line 1" in summary


def test_dedupe_keeps_the_first_copy(twenty_copies, observe):
    result = load_records(twenty_copies, dedupe=True)
    observe(f"{len(result)} records, {result.n_duplicates} duplicates dropped")
    assert [r.prompt for r in result] == ["Say 0", "Say 1"] and result.n_duplicates == 19
    assert "duplicates: 19 (dropped)" in result.summary()


def test_data_inspect_reports_and_dedupes(twenty_copies, capsys, observe):
    from axial.cli import main

    main(["data", "inspect", str(twenty_copies)])
    out = capsys.readouterr().out
    assert "records: 21" in out and "duplicates: 19" in out
    main(["data", "inspect", str(twenty_copies), "--dedupe"])
    out = capsys.readouterr().out
    observe("with --dedupe: " + "; ".join(line for line in out.splitlines() if line.startswith(("records:", "duplicates:"))))
    assert "records: 2" in out and "duplicates: 19 (dropped)" in out


def test_training_counts_duplicates_and_dedupes(twenty_copies, tmp_path, observe):
    from axial.experts.config import ExpertConfig
    from axial.experts.train import SIDECAR, train_expert
    from axial.testing import tiny_llama

    def run(out, **kw):
        cfg = ExpertConfig(axis="helpful", data=[str(twenty_copies)], out=str(out), model="tiny", split="all",
                           max_steps=1, batch_size=2, val_size=0, dtype="fp32", lora_r=2, lora_alpha=4, **kw)
        return json.loads((train_expert(cfg, base=tiny_llama()) / SIDECAR).read_text())["metrics"]

    kept = run(tmp_path / "kept")
    assert kept["n_duplicates"] == 19 and kept["n_train"] == 21 and not kept["deduped"]
    dropped = run(tmp_path / "deduped", dedupe=True)
    observe(f"axial_expert.json: n_duplicates {kept['n_duplicates']}, n_train {kept['n_train']}; with dedupe=true: "
            f"n_train {dropped['n_train']}")
    assert dropped["n_duplicates"] == 19 and dropped["n_train"] == 2 and dropped["deduped"]


def test_non_utf8_input_names_the_line(tmp_path, observe):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b"".join([json.dumps(_alpaca(0)).encode() + b"\n", json.dumps(_alpaca(1)).encode() + b"\n",
                               '{"instruction": "caf\u00e9", "output": "x"}\n'.encode("latin-1")]))
    with pytest.raises(DataError) as e:
        load_records(path)
    observe(f"`{str(e.value).replace(str(tmp_path), '...')}`")
    assert str(e.value).startswith(f"{path}:3: ") and "not UTF-8" in str(e.value)
    assert "column 21" in str(e.value)


def test_parquet_gz_reads_like_parquet(tmp_path, observe):
    import pyarrow as pa
    import pyarrow.parquet as pq

    plain = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([_alpaca(i) for i in range(5)]), plain)
    packed = tmp_path / "d.parquet.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    got, want = load_records(packed), load_records(plain)
    observe(f"{len(got)} records of kind {got.kind}, identical to the plain .parquet")
    assert [r.to_dict() | {"source": ""} for r in got] == [r.to_dict() | {"source": ""} for r in want]
    assert len(got) == 5 and got.kind == "alpaca"


def test_corrupt_parquet_gz_is_a_data_error(tmp_path, observe):
    bad = tmp_path / "bad.parquet.gz"
    bad.write_bytes(gzip.compress(b"not parquet"))
    with pytest.raises(DataError, match="bad.parquet.gz") as e:
        load_records(bad)
    observe(f"`{str(e.value).replace(str(tmp_path), '...')[:80]}...`")
