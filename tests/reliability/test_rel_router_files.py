"""A router folder is complete only once mocae.json exists; calibrate refuses a router without its training keys
(issue 15, item 4), and router training killed with SIGKILL resumes to the same router."""

from __future__ import annotations

import shutil

import pytest
from rel_helpers import sigkilled_before_writing
from safetensors.torch import load_file

from axial.errors import AxialError
from axial.mocae import load_router
from axial.mocae.calibrate import CalibrateConfig, calibrate
from axial.mocae.train import RouterConfig, train_router
from axial.testing import tiny_llama


def _cfg(experts, data, out):
    return RouterConfig(experts=experts, data=data, out=str(out), model="tiny", dtype="fp32", epochs=5,
                        batch_size=16, per_axis_limit=None)


@pytest.fixture(scope="module")
def reference_router(tmp_path_factory, rel_expert_dirs, rel_routing_data):
    out = tmp_path_factory.mktemp("ref") / "router"
    train_router(_cfg(rel_expert_dirs, rel_routing_data, out), base=tiny_llama())
    return out


def test_sigkill_before_train_keys_leaves_no_router_and_rerun_matches(tmp_path, rel_expert_dirs,
                                                                      rel_routing_data, reference_router,
                                                                      monkeypatch, observe):
    out = tmp_path / "router"
    cfg = _cfg(rel_expert_dirs, rel_routing_data, out)
    sigkilled_before_writing("train_keys.json", lambda: train_router(cfg, base=tiny_llama()))
    # Killed after the weights were fitted but before train_keys.json: the folder must not pass for a router.
    assert not (out / "mocae.json").exists()
    with pytest.raises(AxialError, match="expected mocae.json"):
        load_router(out)

    def no_recompute(*_a, **_k):
        raise AssertionError("the rerun recomputed the features the killed run had cached")

    monkeypatch.setattr("axial.mocae.train.collect_features", no_recompute)
    train_router(cfg, base=tiny_llama())  # the same command again: no "already holds a router"
    assert (out / "train_keys.json").is_file() and (out / "mocae.json").is_file()
    got, want = load_file(out / "router.safetensors"), load_file(reference_router / "router.safetensors")
    same = got.keys() == want.keys() and all((got[k] == want[k]).all() for k in got)
    observe("killed before train_keys.json: no mocae.json, load_router refuses; rerun reused the cached "
            f"features and its router is {'bit-identical to' if same else 'DIFFERENT from'} an uninterrupted run's")
    assert same


def test_calibrate_refuses_a_router_without_train_keys(tmp_path, reference_router, observe):
    folder = tmp_path / "router"
    shutil.copytree(reference_router, folder)
    (folder / "train_keys.json").unlink()
    with pytest.raises(AxialError, match="train_keys.json: missing") as e:
        calibrate(CalibrateConfig(router=str(folder), resamples=10), base=tiny_llama())
    observe(f"AxialError: `{str(e.value).replace(str(tmp_path), '...')[:90]}...`")
    assert not (folder / "calibration.json").exists()
