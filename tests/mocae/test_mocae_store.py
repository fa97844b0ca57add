import shutil

import pytest

from axial.errors import AxialError
from axial.mocae.router import MoCaERouter
from axial.mocae.store import load_router, save_router


def test_router_folder_moved_with_its_experts_still_finds_them(tmp_path):
    root = tmp_path / "a"
    for name in ("helpful", "honest"):
        (root / "experts" / name).mkdir(parents=True)
    save_router(MoCaERouter(8, ["helpful", "honest"], 2), root / "router",
                expert_dirs=[str(root / "experts" / n) for n in ("helpful", "honest")], base_model="embedded",
                top_k=0, importance=None)
    moved = tmp_path / "b"
    shutil.copytree(root, moved)
    shutil.rmtree(root)
    loaded = load_router(moved / "router")
    assert loaded.expert_dirs == [str((moved / "experts" / n).resolve()) for n in ("helpful", "honest")]


def test_load_router_errors_name_the_problem(tmp_path):
    with pytest.raises(AxialError, match="mocae.json"):
        load_router(tmp_path)
    save_router(MoCaERouter(8, ["a", "b"], 2), tmp_path / "r", expert_dirs=[str(tmp_path)] * 2,
                base_model="embedded", top_k=0, importance=None)
    with pytest.raises(AxialError, match="calibration='maybe'"):
        load_router(f"{tmp_path / 'r'}?calibration=maybe")
    save_router(MoCaERouter(8, ["a", "b"], 2), tmp_path / "bad", expert_dirs=[str(tmp_path)], base_model="embedded",
                top_k=0, importance=None)
    with pytest.raises(AxialError, match="field 'expert_dirs'"):
        load_router(tmp_path / "bad")
