"""CLI usage errors: one line on stderr naming the problem, exit code 2, no traceback (issue 15, item 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from axial.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv, says", [
    (["train-expert", "--axis", "helpful", "--out", "x"], "Missing option '--data'"),   # missing required option
    (["data", "inspect", "--bogus", "f.jsonl"], "No such option: --bogus"),              # unknown flag
    (["data", "inspect"], "Missing argument 'source'"),                                 # missing argument
    (["data", "inspect", "f.jsonl", "--limit", "many"], "Invalid value for '--limit'"),  # bad value
    (["data", "inspect", "f.jsonl", "--limit"], "Option '--limit' requires an argument"),  # flag without value
    (["data", "inspect", "a.jsonl", "b.jsonl"], "Got unexpected extra argument(s) (b.jsonl)"),  # extra argument
    (["frobnicate"], "No such command 'frobnicate'"),                                   # unknown command
    (["data", "frobnicate"], "No such command 'frobnicate'"),                           # unknown subcommand
])
def test_usage_error_is_one_line_exit_2(argv, says, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert says in lines[0] and "Traceback" not in err and "--help" in lines[0]


@pytest.mark.parametrize("argv", [[], ["data"]])
def test_no_arguments_shows_help_not_a_traceback(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Usage:" in text and "Traceback" not in text and "NoArgsIsHelpError" not in text


def test_usage_error_from_the_installed_entry_point():
    """The real process: exit status 2 and a single stderr line (what a shell user sees)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "axial.cli", "data", "inspect", "--bogus", "x"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == ["error: No such option: --bogus (see 'axial data inspect --help')"]
