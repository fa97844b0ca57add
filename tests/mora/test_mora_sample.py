import json

import pytest

from axial.errors import AxialError, DataError
from axial.mora.sample import read_jsonl_resumable, sample


def _prompts(fakes, n=7):
    return fakes.make_prompts([("helpful", f"be helpful about thing {i}") for i in range(n)])


def test_sample_writes_k_scored_rollouts_per_prompt(cfg, judges, fakes, tmp_path):
    rows = sample(cfg, _prompts(fakes, 3), tmp_path / "r.jsonl", generate=fakes.ScriptedGenerator(), judges=judges)
    assert [r["id"] for r in rows] == ["helpful:0", "helpful:1", "helpful:2"]
    assert all(len(r["rollouts"]) == cfg.k for r in rows)
    assert set(rows[0]["rollouts"][0]["scores"]) == {"helpful", "harmless", "honest"}
    assert rows[0]["rollouts"][0]["scores"]["helpful"] > 0.9 > rows[0]["rollouts"][0]["scores"]["honest"]


def test_crash_then_resume_samples_each_prompt_exactly_once(cfg, judges, fakes, tmp_path):
    path = tmp_path / "r.jsonl"
    prompts = _prompts(fakes, 7)  # chunk_prompts=2 -> chunks of 2,2,2,1
    crashing = fakes.ScriptedGenerator(fail_after=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        sample(cfg, prompts, path, generate=crashing, judges=judges)
    assert len(read_jsonl_resumable(path)) == 4  # two finished chunks survive the crash
    resumed = fakes.ScriptedGenerator()
    rows = sample(cfg, prompts, path, generate=resumed, judges=judges)
    assert resumed.calls == 2  # only the two unfinished chunks are sampled again
    ids = [r["id"] for r in read_jsonl_resumable(path)]
    assert sorted(ids) == sorted(p.id for p in prompts) and len(ids) == len(set(ids)) == 7
    assert len(rows) == 7
    # A third run has nothing to do and does not touch the generator.
    idle = fakes.ScriptedGenerator(fail_after=0)
    assert len(sample(cfg, prompts, path, generate=idle, judges=judges)) == 7


def test_truncated_last_line_is_redone(cfg, judges, fakes, tmp_path):
    path = tmp_path / "r.jsonl"
    prompts = _prompts(fakes, 4)
    sample(cfg, prompts, path, generate=fakes.ScriptedGenerator(), judges=judges)
    raw = path.read_bytes()
    path.write_bytes(raw[:-25])  # killed while writing the last line
    rows = read_jsonl_resumable(path)
    assert len(rows) == 3 and path.read_bytes().endswith(b"\n")
    gen = fakes.ScriptedGenerator()
    rows = sample(cfg, prompts, path, generate=gen, judges=judges)
    assert gen.calls == 1 and [r["id"] for r in rows] == [p.id for p in prompts]
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == [p.id for p in prompts]


def test_corrupt_middle_line_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a"}\n{"id": oops}\n{"id": "c"}\n')
    with pytest.raises(DataError, match=r"r.jsonl:2"):
        read_jsonl_resumable(path)


def test_continuing_with_other_settings_is_refused(cfg, judges, fakes, tmp_path):
    path = tmp_path / "r.jsonl"
    sample(cfg, _prompts(fakes, 2), path, generate=fakes.ScriptedGenerator(), judges=judges)
    with pytest.raises(AxialError, match="k: 3 -> 5"):
        sample(cfg.replace(k=5), _prompts(fakes, 2), path, generate=fakes.ScriptedGenerator(), judges=judges)


def test_sample_with_a_real_tiny_model(cfg, judges, fakes, tiny, tmp_path):
    from axial.mora.sample import hf_generator

    model, tok = tiny
    cfg = cfg.replace(max_new_tokens=4, batch_size=4)
    rows = sample(cfg, _prompts(fakes, 2), tmp_path / "r.jsonl", generate=hf_generator(model, tok), judges=judges)
    assert [len(r["rollouts"]) for r in rows] == [3, 3]
    # temperature sampling: the k rollouts of a prompt are not all the same
    assert len({r["response"] for r in rows[0]["rollouts"]}) > 1


def test_auto_backend_never_picks_vllm_even_when_installed(monkeypatch):
    import importlib.util

    from axial.mora import sample

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real(name, *a))
    monkeypatch.setattr(sample, "vllm_generator", lambda *a: pytest.fail("vLLM picked by backend=auto"))
    loaded = []
    monkeypatch.setattr("axial.models.load_model", lambda spec, dtype: loaded.append(spec) or ("m", "t"))
    cfg = type("Cfg", (), {"backend": "auto", "model": "tiny", "dtype": "fp32", "seed": 0})()
    assert callable(sample.make_generator(cfg)) and loaded == ["tiny"]
