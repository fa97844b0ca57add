import json

import pytest
import typer

import axial.cli as cli


@pytest.fixture
def main(monkeypatch):
    # Only this module's commands, on a fresh app, so the test does not depend on other modules.
    monkeypatch.setattr(cli, "app", typer.Typer(add_completion=False))
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["axial.data.cli"])
    monkeypatch.setattr(cli, "_registered", False, raising=False)
    return cli.main


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_inspect_prints_kind_count_and_example(main, tmp_path, capsys):
    p = write(tmp_path / "a.jsonl", [{"instruction": "Say hi", "output": "Hi"}] * 3)
    main(["data", "inspect", str(p)])
    out = capsys.readouterr().out
    assert "kind: alpaca (SFTRecord)" in out and "records: 3" in out and "invalid: 0" in out
    assert '"content": "Say hi"' in out


def test_inspect_broken_file_exits_2_with_location(main, tmp_path, capsys):
    p = write(tmp_path / "a.jsonl", [{"instruction": "i", "output": "o"}, '{"instruction": "i", "output"'])
    with pytest.raises(SystemExit) as e:
        main(["data", "inspect", str(p)])
    assert e.value.code == 2
    # rich wraps long lines on the console; the message itself is one line
    assert f"{p}:2: invalid JSON" in capsys.readouterr().err.replace("\n", "")


def test_inspect_skip_invalid_split_and_kind(main, tmp_path, capsys):
    rows = [{"instruction": f"task {i}", "output": "o", "generator": "g"} for i in range(20)]
    p = write(tmp_path / "a.jsonl", rows + [{"instruction": "", "output": "o", "generator": "g"}])
    main(["data", "inspect", str(p), "--skip-invalid", "--kind", "alpaca", "--split", "test"])
    out = capsys.readouterr().out
    assert "kind: alpaca (SFTRecord)" in out and "invalid: 1 (skipped)" in out
    assert f"{p}:21: field 'instruction': is empty" in out
    assert "split: test" in out


def test_inspect_unknown_kind_exits_2(main, tmp_path, capsys):
    p = write(tmp_path / "a.jsonl", [{"instruction": "i", "output": "o"}])
    with pytest.raises(SystemExit) as e:
        main(["data", "inspect", str(p), "--kind", "nope"])
    assert e.value.code == 2 and "unknown kind 'nope'" in capsys.readouterr().err.replace("\n", "")
