"""Fixtures for the reliability tests: tiny random experts, separable routing data, one torch thread."""

from __future__ import annotations

import json

import pytest

AXES = ("helpful", "harmless", "honest")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    # The tests fork (rel_helpers.killed_while_writing); a single intra-op thread keeps the child free of
    # OpenMP pools it cannot use after fork, and a tiny model gains nothing from threads anyway.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def rel_expert_dirs(tmp_path_factory):
    from axial.mixture.testing import write_random_adapter
    from axial.testing import tiny_llama

    root = tmp_path_factory.mktemp("rel-experts")
    return [str(write_random_adapter(lambda: tiny_llama()[0], root / axis, seed=i, axis=axis, r=4, lora_alpha=8,
                                     target_modules=["q_proj", "v_proj"]))
            for i, axis in enumerate(AXES)]


@pytest.fixture(scope="session")
def rel_routing_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rel-routing-data")
    files = []
    for a, axis in enumerate(AXES):
        marker = ["alpha", "bravo", "charlie"][a]
        path = root / f"{axis}.jsonl"
        path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"{marker} item {i}"}],
                                            "response": f"answer {i}", "axis": axis}) + "\n" for i in range(40)))
        files.append(f"{axis}={path}")
    return files


@pytest.fixture(scope="session")
def rel_server(tiny_model_dir, rel_expert_dirs):
    """One real `axial serve` process for every server test (settings in rel_server.SERVER_ARGS)."""
    from rel_server import SERVER_ARGS, serve_process

    with serve_process(tiny_model_dir, *SERVER_ARGS, experts=rel_expert_dirs) as (port, _proc):
        yield port


@pytest.fixture
def observe(record_property):
    """observe("what happened") — the `observed` column of benchmarks/results/reliability/README.md, which
    benchmarks/reliability_probes.py builds from these tests."""
    return lambda text: record_property("observed", text)
