"""Run the reliability probes (tests/reliability) and write the table of what each one checks and observed.

    python benchmarks/reliability_probes.py --baseline 1d38d94   # -> benchmarks/results/reliability/

Each probe is a test in tests/reliability (so CI runs the same checks); this script runs them through pytest,
collects what each one recorded as observed (the `observe` fixture, stored in pytest's JUnit XML), and writes
one row per probe: case, expected, observed. With `--baseline REV` it runs the same probes against that
revision's `axial/` too and adds what they observed there. It exits non-zero if any probe fails.

Kills are deterministic, not timed: a forked child is SIGKILLed as it opens the file that matters, or stopped
part-way through writing it by RLIMIT_FSIZE (SIGXFSZ) — see tests/reliability/rel_helpers.py. Server probes
run a real `axial serve` process on loopback.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# test function -> (section, case, expected). "{id}" is the parameter id of a parametrized test.
PROBES: dict[str, tuple[str, str, str]] = {
    # 1. slow and idle clients
    "test_idle_sockets_beyond_the_budget_are_shed_and_others_served": (
        "1 server: slow / idle clients", "74 idle sockets ({id}) on a server with a connection budget of 44",
        "/health and a chat request answered at once; the longest-idle sockets closed"),
    "test_slowloris_trickle_is_cut_off_at_the_header_timeout": (
        "1 server: slow / idle clients", "request head trickled one byte per 0.1 s",
        "closed at the 1.5 s head timeout (the trickle does not extend it)"),
    "test_silent_connection_is_closed_at_the_header_timeout": (
        "1 server: slow / idle clients", "connection that sends nothing", "closed at the 1.5 s head timeout"),
    "test_stalled_body_gets_408_and_the_server_stays_healthy": (
        "1 server: slow / idle clients", "body stops after 20 of 1000 declared bytes",
        "408 invalid_request_error at the 1.5 s body timeout, connection closed, server healthy"),
    "test_idle_keep_alive_connection_is_closed": (
        "1 server: slow / idle clients", "keep-alive connection left idle after a response",
        "closed after the 1.0 s keep-alive timeout"),
    "test_a_long_stream_outlives_every_timeout": (
        "1 server: slow / idle clients", "400-token streamed completion", "streams to the end (responses are not timed)"),
    # 2. hostile JSON
    "test_deeply_nested_json_is_400_and_the_connection_survives": (
        "2 server: hostile JSON", "100k-deep JSON ({id})",
        "400 invalid_request_error; the next request on the same keep-alive connection is served"),
    "test_oversized_integer_literal_is_400": (
        "2 server: hostile JSON", "max_tokens with 5000 digits", "400 invalid_request_error, connection kept"),
    # 3. validation, status codes, bounded errors
    "test_wrong_types_and_ranges_are_400_naming_the_field": (
        "3 server: strict fields, OpenAI statuses", "{id}",
        "400 invalid_request_error; message starts with the named field; body <= 4 KB"),
    "test_huge_axis_name_gives_a_bounded_error": (
        "3 server: strict fields, OpenAI statuses", "preference with a 300k-character axis name",
        "400 naming axial.preference; body <= 4 KB"),
    "test_unknown_model_is_404_like_openai": (
        "3 server: strict fields, OpenAI statuses", "unknown model", "404 invalid_request_error, code model_not_found"),
    "test_huge_model_name_gives_a_bounded_error": (
        "3 server: strict fields, OpenAI statuses", "500k-character model name", "404; body <= 4 KB"),
    "test_wrong_method_is_405_invalid_request": (
        "3 server: strict fields, OpenAI statuses", "GET /v1/chat/completions",
        "405 invalid_request_error with Allow: POST"),
    "test_unknown_path_is_404_invalid_request": (
        "3 server: strict fields, OpenAI statuses", "GET /v1/engines", "404 invalid_request_error"),
    "test_a_valid_request_still_works": (
        "3 server: strict fields, OpenAI statuses", "a valid request after all of the above", "200"),
    # 4. torn writes and completion markers
    "test_kill_during_rewrite_keeps_the_previous_file": (
        "4 files: torn writes, completion markers", "killed while rewriting {id}",
        "the previous complete file survives; a rerun replaces it"),
    "test_eval_store_meta_killed_on_first_write_resumes": (
        "4 files: torn writes, completion markers", "killed while writing the eval store's meta file",
        "no half file; the rerun proceeds"),
    "test_every_output_goes_through_axial_io": (
        "4 files: torn writes, completion markers", "every file write under axial/",
        "temporary file + rename (axial.io), except listed append-only logs"),
    "test_sigkill_before_train_keys_leaves_no_router_and_rerun_matches": (
        "4 files: torn writes, completion markers", "train-router SIGKILLed before train_keys.json",
        "no mocae.json (not a router); the rerun reuses cached features and matches an uninterrupted run"),
    "test_calibrate_refuses_a_router_without_train_keys": (
        "4 files: torn writes, completion markers", "calibrate on a router without train_keys.json",
        "refused (the train/calibration overlap check cannot run)"),
    # 5. resume bookkeeping
    "test_cut_off_log_line_then_resume": (
        "5 resume: logs and kills", "train-expert killed mid-write of a train_log.jsonl line, rerun",
        "resumes; each step logged once; train_loss of the whole run (= uninterrupted)"),
    "test_sigkill_before_first_checkpoint_logs_each_step_once": (
        "5 resume: logs and kills", "train-expert SIGKILLed before its first checkpoint, rerun",
        "each step logged once"),
    "test_sigkill_after_a_checkpoint_reports_the_whole_runs_loss": (
        "5 resume: logs and kills", "train-expert SIGKILLed after checkpoint 4 of 6, rerun",
        "axial_expert.json train_loss = uninterrupted run's"),
    "test_corrupt_line_in_the_middle_names_file_and_line": (
        "5 resume: logs and kills", "garbage line in the middle of train_log.jsonl", "error naming file:line"),
    "test_append_only_logs_survive_a_kill_mid_line": (
        "5 resume: logs and kills", "killed mid-line while appending to a resumable JSONL log (Pareto cache, MORA)",
        "the cut-off line is dropped and the next append lands on its own line; a corrupt middle line is named"),
    "test_corrupt_eval_store_meta_names_the_file": (
        "5 resume: logs and kills", "corrupt eval store meta file", "error naming the file"),
    "test_killed_eval_resumes_to_the_same_report": (
        "5 resume: logs and kills", "axial eval killed ({id}) at its 4th of 8 items, rerun",
        "only the 5 unsaved items scored; report identical to an uninterrupted run's"),
    # 6. init_adapter
    "test_pickled_init_adapter_is_refused_like_serve_and_chat": (
        "6 inputs: init_adapter", "init_adapter with only a pickled adapter_model.bin",
        "refused before any model loads, with serve/chat's message"),
    "test_missing_init_adapter_fails_before_the_model_loads": (
        "6 inputs: init_adapter", "init_adapter that does not exist", "refused before any model loads"),
    # 7. data
    "test_duplicates_are_counted_and_listed": (
        "7 inputs: data", "20 copies of one record + 1 other", "counted and listed with the first copy's line"),
    "test_dedupe_keeps_the_first_copy": ("7 inputs: data", "the same with dedupe", "2 records"),
    "test_data_inspect_reports_and_dedupes": (
        "7 inputs: data", "`axial data inspect` on it, with and without --dedupe", "duplicates reported; dropped with --dedupe"),
    "test_training_counts_duplicates_and_dedupes": (
        "7 inputs: data", "train-expert on it, with and without dedupe=true",
        "n_duplicates in axial_expert.json; 2 training examples with dedupe"),
    "test_non_utf8_input_names_the_line": ("7 inputs: data", "Latin-1 byte on line 3", "error naming file:line and column"),
    "test_parquet_gz_reads_like_parquet": ("7 inputs: data", ".parquet.gz", "read, same records as the .parquet"),
    "test_corrupt_parquet_gz_is_a_data_error": ("7 inputs: data", "corrupt .parquet.gz", "error naming the file"),
    # 8. CLI
    "test_usage_error_is_one_line_exit_2": ("8 CLI usage errors", "{id}", "one stderr line naming it, exit 2"),
    "test_no_arguments_shows_help_not_a_traceback": ("8 CLI usage errors", "`{id}` with nothing after it", "its help, exit 2, no traceback"),
    "test_usage_error_from_the_installed_entry_point": (
        "8 CLI usage errors", "unknown flag, as a real process", "exit status 2, one stderr line"),
}


def run_probes(axial_src: Path, junit: Path) -> float:
    """pytest on tests/reliability with `axial` imported from `axial_src`; results in a JUnit XML file."""
    env = {**os.environ, "PYTHONPATH": str(axial_src), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.time()
    # -P: the current folder (this checkout) must not shadow `axial_src` on sys.path.
    subprocess.run([sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/reliability",
                    f"--junitxml={junit}", "-o", "junit_family=xunit1"], cwd=REPO, env=env, check=False)
    return time.time() - started


def read_junit(path: Path) -> dict[str, dict]:
    """test name (function[param]) -> outcome, seconds, observed, error."""
    rows = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        row = {"outcome": "passed", "seconds": float(case.get("time", 0)), "observed": "", "error": ""}
        for prop in case.iter("property"):  # the last one recorded wins (a test may refine what it saw)
            if prop.get("name") == "observed":
                row["observed"] = prop.get("value", "")
        for tag in ("failure", "error"):
            bad = case.find(tag)
            if bad is not None:
                row["outcome"] = "failed"
                row["error"] = (bad.get("message") or "").splitlines()[0][:200] if bad.get("message") else tag
        if case.find("skipped") is not None:
            row["outcome"] = "skipped"
        rows[case.get("name")] = row
    return rows


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _shown(row: dict | None) -> str:
    if row is None:
        return "(not run)"
    text = row["observed"] if row["observed"] else ("" if row["outcome"] == "passed" else row["error"])
    text = re.sub(r"/tmp/pytest-of-[^/]+/pytest-\d+/", ".../", text)
    text = text if len(text) <= 300 else text[:300] + "..."
    return text if row["outcome"] == "passed" else f"{text} — **{row['outcome'].upper()}**"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "reliability"))
    ap.add_argument("--baseline", default=None, help="also run the probes against this git revision's axial/ "
                    "(e.g. the commit before the fixes) and show what it did in a 'before' column")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    from axial.io import atomic_write_json, atomic_write_text

    with tempfile.TemporaryDirectory() as tmp:
        seconds = run_probes(REPO, Path(tmp) / "after.xml")
        after = read_junit(Path(tmp) / "after.xml")
        before = None
        if args.baseline:
            src = Path(tmp) / "baseline"
            src.mkdir()
            archive = subprocess.run(["git", "archive", args.baseline, "axial"], cwd=REPO, check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
            run_probes(src, Path(tmp) / "before.xml")
            before = read_junit(Path(tmp) / "before.xml")

    rows = []
    for name, row in after.items():
        func, _, param = name.partition("[")
        section, case, expected = PROBES.get(func, ("unlisted", func, "(not in PROBES)"))
        rows.append({"name": name, **row, "section": section, "case": case.format(id=param.rstrip("]")),
                     "expected": expected, "before": (before or {}).get(name)})
    rows.sort(key=lambda r: r["section"])
    unlisted = [r["name"] for r in rows if r["section"] == "unlisted"]
    passed = sum(r["outcome"] == "passed" for r in rows)
    failed_before = sum(r["before"] is not None and r["before"]["outcome"] != "passed" for r in rows)

    import torch
    import uvicorn

    env = {"python": platform.python_version(), "torch": torch.__version__, "uvicorn": uvicorn.__version__,
           "cpus": os.cpu_count(), "platform": platform.platform()}
    atomic_write_json(out / "probes.json", {"passed": passed, "total": len(rows), "seconds": round(seconds, 1),
                                            "baseline": args.baseline, "failed_on_baseline": failed_before,
                                            "environment": env, "probes": rows})
    command = "python benchmarks/reliability_probes.py" + (f" --baseline {args.baseline}" if args.baseline else "")
    lines = [
        "# Reliability probes (issue 15)", "",
        "Regenerated by one command (it runs `tests/reliability`, the same tests CI runs, and writes this file "
        "and `probes.json`):", "", f"    {command}", "",
        f"**{passed} of {len(rows)} probes pass** ({datetime.date.today().isoformat()}, {seconds:.0f} s on "
        f"{env['cpus']} CPUs shared with other jobs; Python {env['python']}, torch {env['torch']}, "
        f"uvicorn {env['uvicorn']})."]
    if args.baseline:
        lines += ["", f"The *before* column is the same probe run against `axial/` at `{args.baseline}` (before "
                  f"the fixes; its server without the new timeout flags, i.e. with its own defaults): "
                  f"**{failed_before} of {len(rows)} failed there**. Passing there too (see their before "
                  "column: behaviour that already held, or for `axial.source`, a field that did not exist yet and "
                  "was refused as unsupported): " + "; ".join(
                      r["case"] for r in rows if r["before"] is not None and r["before"]["outcome"] == "passed")
                  + "."]
    lines += [
        "", "How the probes work: kills are deterministic — a forked child is SIGKILLed as it opens the file that "
        "matters, or stopped part-way through writing it (RLIMIT_FSIZE, so the kernel sends SIGXFSZ after a "
        "given number of bytes); see `tests/reliability/rel_helpers.py`. Server probes start a real `axial "
        "serve` process on loopback (tiny random model, connection budget 44 = 2 × (queue 4 + batch 2) + 32, "
        "head/body/keep-alive timeouts 1.5/1.5/1.0 s) and speak raw HTTP/1.1 on sockets they open and close "
        "(at most 74 at once). Training and eval probes use a tiny random Llama saved as safetensors."]
    section = None
    for r in rows:
        if r["section"] != section:
            section = r["section"]
            head = ["case", "expected", "observed"] + (["before the fixes"] if args.baseline else [])
            lines += ["", f"## {section}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        cells = [r["case"], r["expected"], _shown(r)] + ([_shown(r["before"])] if args.baseline else [])
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if unlisted:
        lines += ["", f"Tests not described in PROBES: {unlisted}"]
    atomic_write_text(out / "README.md", "\n".join(lines) + "\n")
    print(f"{passed}/{len(rows)} probes pass -> {out / 'README.md'}")
    return 0 if passed == len(rows) and not unlisted else 1


if __name__ == "__main__":
    raise SystemExit(main())
