"""CLI usage errors: one line on stderr naming the problem, exit code 2, no traceback (issue 15, item 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import axial
from axial.cli import main

# The real process runs the same axial as this test.
AXIAL_SRC = str(Path(axial.__file__).resolve().parents[1])


@pytest.mark.parametrize("argv, says", [
    (["train-expert", "--axis", "helpful", "--out", "x"], "Missing option '--data'"),   # missing required option
    (["data", "inspect", "--bogus", "f.jsonl"], "No such option: --bogus"),              # unknown flag
    (["data", "inspect"], "Missing argument 'source'"),                                 # missing argument
    (["data", "inspect", "f.jsonl", "--limit", "many"], "Invalid value for '--limit'"),  # bad value
    (["data", "inspect", "f.jsonl", "--limit"], "Option '--limit' requires an argument"),  # flag without value
    (["data", "inspect", "a.jsonl", "b.jsonl"], "Got unexpected extra argument(s) (b.jsonl)"),  # extra argument
    (["frobnicate"], "No such command 'frobnicate'"),                                   # unknown command
    (["data", "frobnicate"], "No such command 'frobnicate'"),                           # unknown subcommand
], ids=["missing-option", "unknown-flag", "missing-argument", "bad-value", "flag-without-value", "extra-argument",
        "unknown-command", "unknown-subcommand"])
def test_usage_error_is_one_line_exit_2(argv, says, capsys, observe):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    observe(f"exit {e.value.code}, {len(lines)} line: `{lines[0] if lines else ''}`")
    assert len(lines) == 1, err
    assert says in lines[0] and "Traceback" not in err and "--help" in lines[0]


@pytest.mark.parametrize("argv", [[], ["data"]], ids=["axial", "axial data"])
def test_no_arguments_shows_help_not_a_traceback(argv, capsys, observe):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    observe(f"exit {e.value.code}, the command's help ({len(text.splitlines())} lines), no traceback")
    assert "Usage:" in text and "Traceback" not in text and "NoArgsIsHelpError" not in text


def test_usage_error_from_the_installed_entry_point(observe):
    """The real process: exit status 2 and a single stderr line (what a shell user sees)."""
    env = {**os.environ, "PYTHONPATH": AXIAL_SRC, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-P", "-m", "axial.cli", "data", "inspect", "--bogus", "x"],
                          capture_output=True, text=True, env=env, timeout=120)
    observe(f"exit {proc.returncode}, stderr `{proc.stderr.strip()}`")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == ["error: No such option: --bogus (see 'axial data inspect --help')"]
