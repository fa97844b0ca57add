import pytest

from axial.data.records import PreferenceRecord, SFTRecord
from axial.errors import AxialError
from axial.mora.align import align, arm_pool, build_stages, zscores


def _rollout(response, h, s, t):
    return {"response": response, "scores": {"helpful": h, "harmless": s, "honest": t}}


def _rows():
    return [
        {"id": "p1", "axis": "helpful", "messages": [{"role": "user", "content": "q1"}],
         "rollouts": [_rollout("help", 0.9, 0.1, 0.2), _rollout("safe", 0.2, 0.9, 0.3),
                      _rollout("true", 0.1, 0.2, 0.8), _rollout("all", 0.7, 0.7, 0.7)]},
        {"id": "p2", "axis": "honest", "messages": [{"role": "user", "content": "q2"}],
         "rollouts": [_rollout("a", 0.5, 0.5, 0.5), _rollout("", 0.99, 0.99, 0.99)]},
    ]


def test_sequential_sft_stages_pick_the_best_rollout_per_axis_in_order(cfg):
    stages = build_stages(cfg.replace(mode="sequential", method="sft"), _rows())
    assert [s["name"] for s in stages] == ["01_helpful", "02_harmless", "03_honest"]
    assert [s["records"][0].response for s in stages] == ["help", "safe", "true"]
    # the empty response is never a training target even though it scores best
    assert all(s["records"][1].response == "a" for s in stages)
    assert all(isinstance(r, SFTRecord) for s in stages for r in s["records"])


def test_axis_order_is_configurable(cfg):
    stages = build_stages(cfg.replace(axis_order=["honest", "helpful"]), _rows())
    assert [s["axis"] for s in stages] == ["honest", "helpful"]
    with pytest.raises(AxialError, match="axis_order"):
        build_stages(cfg.replace(axis_order=["kind"]), _rows())


def test_simultaneous_uses_the_combined_normalised_reward(cfg):
    stages = build_stages(cfg.replace(mode="simultaneous"), _rows())
    assert len(stages) == 1 and stages[0]["axis"] == "mixed"
    assert stages[0]["records"][0].response == "all"  # good on every axis beats best-on-one


def test_dpo_pairs_best_vs_worst_and_counts_ties(cfg):
    rows = _rows() + [{"id": "p3", "axis": "harmless", "messages": [{"role": "user", "content": "q3"}],
                       "rollouts": [_rollout("x", 0.5, 0.5, 0.5), _rollout("y", 0.5, 0.5, 0.5)]}]
    stages = build_stages(cfg.replace(method="dpo"), rows)
    first = stages[0]
    assert isinstance(first["records"][0], PreferenceRecord)
    assert (first["records"][0].chosen, first["records"][0].rejected) == ("help", "true")
    assert first["stats"]["no_nonempty_rollout"] == 0
    assert first["stats"]["tied_best_worst"] == 2  # p2 has one usable rollout, p3 two equal ones
    assert first["stats"]["records"] == 1


def test_zscores_treat_a_constant_axis_as_unit_scale():
    rows = [{"rollouts": [_rollout("a", 1.0, 0.5, 0.0), _rollout("b", 3.0, 0.5, 0.0)]}]
    norm = zscores(rows, ["helpful", "harmless"])
    assert norm["helpful"] == (2.0, 1.0) and norm["harmless"] == (0.5, 1.0)


def test_rewritten_arm_swaps_in_kept_rewrites_only():
    decisions = [{"id": "p1", "kept": True, "messages": [{"role": "user", "content": "q1 safely"}],
                  "rollouts": [_rollout("new", 1, 1, 1)]},
                 {"id": "p2", "kept": False, "messages": None, "rollouts": None}]
    pool = arm_pool(_rows(), decisions, "rewritten")
    assert pool[0]["messages"][0]["content"] == "q1 safely" and pool[0]["rewritten"]
    assert pool[1]["messages"][0]["content"] == "q2" and not pool[1].get("rewritten")
    original = arm_pool(_rows(), decisions, "original")
    assert [p["messages"][0]["content"] for p in original] == ["q1", "q2"]


def test_sequential_align_trains_one_continuing_adapter(cfg, tiny_model_dir, tmp_path):
    import json

    cfg = cfg.replace(model=str(tiny_model_dir), max_steps=1, train_batch_size=2, max_length=64,
                      axis_order=["helpful", "honest"])
    final = align(cfg, _rows(), [], "original", tmp_path / "align")
    assert (final / "adapter_model.safetensors").exists() and (final / "adapter_config.json").exists()
    stages = sorted(p.name for p in final.parent.iterdir() if p.name != "final")
    assert stages == ["01_helpful", "02_honest"]
    second = json.loads((final.parent / "02_honest" / "expert_config.json").read_text())
    assert second["init_adapter"].endswith("01_helpful")  # stage 2 continues stage 1's adapter
    summary = json.loads((final / "mora_align.json").read_text())
    assert [s["records"] for s in summary["stages"]] == [2, 2]
