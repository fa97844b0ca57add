"""`init_adapter` loads safetensors only and is checked before any model loads (issue 15, item 6)."""

from __future__ import annotations

import shutil

import pytest
import torch

import axial.experts.train as train_mod
from axial.errors import AxialError
from axial.experts.config import ExpertConfig
from axial.mixture.experts import load_lora_expert


@pytest.fixture
def no_model_loads(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded before init_adapter was checked")

    monkeypatch.setattr(train_mod, "_load_base", refuse)
    import axial.models

    monkeypatch.setattr(axial.models, "load_model", refuse)


def _cfg(tmp_path, init_adapter):
    return ExpertConfig(axis="helpful", data=["builtin:helpful"], out=str(tmp_path / "out"), model="tiny",
                        max_steps=2, init_adapter=str(init_adapter))


def _pickled_adapter(tmp_path, rel_expert_dirs):
    """A PEFT adapter folder whose weights are a pickle (adapter_model.bin), as older PEFT wrote them."""
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(rel_expert_dirs[0], folder)
    weights = folder / "adapter_model.safetensors"
    torch.save(load_file(weights), folder / "adapter_model.bin")
    weights.unlink()
    return folder


def _message(folder) -> str:
    with pytest.raises(AxialError) as e:
        load_lora_expert(folder)  # what `axial serve --experts` and `axial chat --experts` say
    return str(e.value)


def test_pickled_init_adapter_is_refused_like_serve_and_chat(tmp_path, rel_expert_dirs, no_model_loads, observe):
    folder = _pickled_adapter(tmp_path, rel_expert_dirs)
    with pytest.raises(AxialError) as e:
        train_mod.train_expert(_cfg(tmp_path, folder))
    observe(f"before any model loads: `{str(e.value).replace(str(tmp_path), '...')}`")
    assert str(e.value) == f"ExpertConfig.init_adapter: {_message(folder)}"
    assert "adapter_model.bin" in str(e.value) and "safetensors" in str(e.value)
    assert not (tmp_path / "out").exists(), "nothing may be written for a refused config"


def test_missing_init_adapter_fails_before_the_model_loads(tmp_path, no_model_loads, observe):
    missing = tmp_path / "no-such-adapter"
    with pytest.raises(AxialError) as e:
        train_mod.train_expert(_cfg(tmp_path, missing))
    observe(f"before any model loads: `{str(e.value).replace(str(tmp_path), '...')}`")
    assert str(e.value) == f"ExpertConfig.init_adapter: {_message(missing)}"
    assert "does not exist" in str(e.value)
