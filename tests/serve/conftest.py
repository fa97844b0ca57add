"""Fixtures: a tiny Llama with three random LoRA experts and a (zero-init) MoCaE router."""

from __future__ import annotations

import pytest

from axial.mixture import LinearRouter, Mixture, Routed
from axial.mixture.testing import write_random_adapter
from axial.serve import Engine
from axial.testing import tiny_llama

AXES = ("helpful", "harmless", "honest")


@pytest.fixture(scope="session")
def expert_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("experts")
    # lora_alpha large so the experts change greedy outputs (a random tiny model barely moves otherwise).
    return [write_random_adapter(lambda: tiny_llama()[0], root / axis, seed=i + 1, axis=axis, r=4,
                                 lora_alpha=256, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"])
            for i, axis in enumerate(AXES)]


@pytest.fixture(scope="module")
def engine(expert_dirs):
    model, tok = tiny_llama()
    mixture = Mixture.attach(model, expert_dirs)
    router = LinearRouter(model.config.hidden_size, len(AXES), num_layers=model.config.num_hidden_layers)
    return Engine(model, tok, name="tiny", mixture=mixture, sources={"mocae": Routed(router)})


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # A 64-wide model gains nothing from threads, and on a loaded shared CPU OpenMP spin-waits make every
    # step ~40x slower; restore the setting for whoever runs next.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
