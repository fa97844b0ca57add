import json

import pytest

from axial.mixture.testing import write_random_adapter
from axial.testing import tiny_llama

AXES = ("helpful", "harmless", "honest")


@pytest.fixture(scope="session")
def expert_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("experts")
    return [str(write_random_adapter(lambda: tiny_llama()[0], root / axis, seed=i, axis=axis, r=4, lora_alpha=8,
                                     target_modules=["q_proj", "v_proj", "down_proj"]))
            for i, axis in enumerate(AXES)]


@pytest.fixture(scope="session")
def separable_data(tmp_path_factory):
    """Three axes whose prompts differ by an unmistakable marker word: a router must learn to separate them."""
    root = tmp_path_factory.mktemp("routing-data")
    files = []
    for a, axis in enumerate(AXES):
        marker = ["alpha", "bravo", "charlie"][a]
        path = root / f"{axis}.jsonl"
        with path.open("w") as f:
            for i in range(60):
                f.write(json.dumps({"messages": [{"role": "user", "content": f"{marker} {marker} item {i} {axis}"}],
                                    "response": f"answer {i}", "axis": axis}) + "\n")
        files.append(f"{axis}={path}")
    return files
