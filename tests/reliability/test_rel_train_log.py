"""train_log.jsonl and axial_expert.json after kills and resumes (issue 15, item 5).

A reference run trains 6 steps uninterrupted; the other runs are killed at a chosen log write (rel_helpers:
deterministic, no timing) and then rerun with the same config in-process. Whatever the kill, the rerun must
finish, the log must hold each step exactly once, and the recorded train loss must be the whole run's, equal
to the reference's (resume is bit-identical, so the numbers match exactly).
"""

from __future__ import annotations

import json

import pytest
from rel_helpers import killed_while_writing, sigkilled_before_writing

from axial.data.records import SFTRecord
from axial.errors import AxialError
from axial.experts.config import ExpertConfig
from axial.experts.train import LOG_FILE, SIDECAR, train_expert
from axial.testing import tiny_llama

STEPS = 6


def _records():
    return [("helpful", SFTRecord(messages=[{"role": "user", "content": f"Count to {i}."}],
                                  response=f"1 to {i}, done.", id=f"r{i}")) for i in range(16)]


def _cfg(out, **kw):
    args = dict(axis="helpful", out=str(out), model="tiny", max_steps=STEPS, batch_size=2, save_steps=2,
                val_size=0, dtype="fp32", lora_r=4, lora_alpha=8)
    return ExpertConfig(**{**args, **kw})


def _train(cfg):
    return lambda: train_expert(cfg, _records(), base=tiny_llama())


def _steps(out):
    return [json.loads(line)["step"] for line in (out / LOG_FILE).read_text().splitlines()
            if "loss" in json.loads(line)]


def _metrics(out):
    return json.loads((out / SIDECAR).read_text())["metrics"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "expert"
    _train(_cfg(out))()
    assert _steps(out) == list(range(1, STEPS + 1))
    return _metrics(out)


def test_cut_off_log_line_then_resume(tmp_path, reference, observe):
    out = tmp_path / "expert"
    cfg = _cfg(out)
    # Killed while appending step 4's line (checkpoint-2 is the last complete one): the line is cut off.
    killed_while_writing(LOG_FILE, _train(cfg), nth=4, keep_bytes=10)
    text = (out / LOG_FILE).read_text()
    assert not text.endswith("\n") and text.count("\n") == 3, "the kill did not cut a line off"
    _train(cfg)()  # before the fix: JSONDecodeError, naming no file, on this and every later rerun
    assert _steps(out) == list(range(1, STEPS + 1))
    metrics = _metrics(out)
    assert metrics["resumed_from_step"] == 2
    observe(f"rerun finished; log steps {_steps(out)}; train_loss {metrics['train_loss']:.6f} "
            f"(uninterrupted {reference['train_loss']:.6f})")
    assert metrics["train_loss"] == reference["train_loss"], "train loss of the resumed part only"


def test_sigkill_before_first_checkpoint_logs_each_step_once(tmp_path, reference, observe):
    out = tmp_path / "expert"
    cfg = _cfg(out, save_steps=100)  # no checkpoint before the kill: the rerun starts over
    sigkilled_before_writing(LOG_FILE, _train(cfg), nth=4)
    assert _steps(out) == [1, 2, 3]
    _train(cfg)()
    observe(f"log steps after the rerun: {_steps(out)}")
    assert _steps(out) == list(range(1, STEPS + 1)), "steps of the killed run were left in the log"
    assert _metrics(out)["train_loss"] == reference["train_loss"]


def test_sigkill_after_a_checkpoint_reports_the_whole_runs_loss(tmp_path, reference, observe):
    out = tmp_path / "expert"
    cfg = _cfg(out)
    sigkilled_before_writing(LOG_FILE, _train(cfg), nth=5)  # after checkpoint-4
    _train(cfg)()
    metrics = _metrics(out)
    observe(f"resumed from step {metrics['resumed_from_step']}; train_loss {metrics['train_loss']:.6f} = "
            f"uninterrupted {reference['train_loss']:.6f}; train_loss_this_run {metrics['train_loss_this_run']:.6f}")
    assert metrics["resumed_from_step"] == 4 and metrics["global_step"] == STEPS
    assert metrics["train_loss"] == reference["train_loss"]
    assert metrics["train_loss_this_run"] != reference["train_loss"]  # steps 5-6 only, kept for reference


def test_corrupt_line_in_the_middle_names_file_and_line(tmp_path, observe):
    out = tmp_path / "expert"
    cfg = _cfg(out)
    sigkilled_before_writing(LOG_FILE, _train(cfg), nth=4)  # log: steps 1-3, checkpoint-2
    lines = (out / LOG_FILE).read_text().splitlines()
    (out / LOG_FILE).write_text("\n".join([lines[0], "{not json", *lines[2:]]) + "\n")
    with pytest.raises(AxialError, match=rf"{LOG_FILE}:2: ") as e:
        _train(cfg)()
    observe(f"`{str(e.value).replace(str(tmp_path), '...')[:80]}...`")


def test_corrupt_eval_store_meta_names_the_file(tmp_path, observe):
    from axial.evaluate.store import ItemStore

    path = tmp_path / "items" / "bench.jsonl"
    path.parent.mkdir()
    (path.parent / "bench.meta.json").write_text('{"model": "m", "max_new')
    with pytest.raises(AxialError, match=r"bench\.meta\.json") as e:
        ItemStore(path).open({"model": "m"})
    observe(f"`{str(e.value).replace(str(tmp_path), '...')[:80]}...`")


def test_append_only_logs_survive_a_kill_mid_line(tmp_path, observe):
    """axial.io's resumable JSONL (MORA samples and rewrites, the Pareto sweep's points and generations cache)."""
    from axial.io import append_jsonl, read_jsonl_resumable

    path = tmp_path / "generations.jsonl"

    def appends():
        for i in range(5):
            append_jsonl(path, [{"source": f"pref:helpful={i}", "responses": ["x" * 50]}])

    killed_while_writing("generations.jsonl", appends, nth=3, keep_bytes=7)
    cut = path.read_bytes()
    rows = read_jsonl_resumable(path)  # before the fix (Pareto cache): JSONDecodeError on the cut-off line
    append_jsonl(path, [{"source": "next", "responses": []}])
    observe(f"{len(cut)}-byte file with a cut-off 3rd line: {len(rows)} rows read, the partial line dropped; "
            f"the next append reads back as row {len(read_jsonl_resumable(path))}")
    assert [r["source"] for r in rows] == ["pref:helpful=0", "pref:helpful=1"] and not cut.endswith(b"\n")
    assert [r["source"] for r in read_jsonl_resumable(path)][-1] == "next"
    path.write_text('{"a": 1}\n{broken\n{"a": 2}\n')
    with pytest.raises(AxialError, match=r"generations\.jsonl:2: corrupt line"):
        read_jsonl_resumable(path)
