import json

import pytest

from axial.errors import AxialError
from axial.mora.config import MoraConfig
from axial.mora.isolate import classify, envelope, envelope_value, isolate, thresholds


def _row(pid, axis, rollouts):
    return {"id": pid, "axis": axis, "rollouts": [{"response": "x", "scores": s} for s in rollouts]}


def test_envelope_is_best_and_spread_per_axis():
    row = _row("p", "helpful", [{"a": 0.2, "b": 0.9}, {"a": 0.6, "b": 0.1}])
    env = envelope(row, ["a", "b"])
    assert env["best"] == {"a": 0.6, "b": 0.9}
    assert env["spread"] == pytest.approx({"a": 0.4, "b": 0.8})
    assert envelope_value(env["best"], "mean_best") == pytest.approx(0.75)
    assert envelope_value(env["best"], "min_best") == pytest.approx(0.6)


def test_missing_axis_score_is_a_clear_error():
    with pytest.raises(AxialError, match="no score for axis 'c'"):
        envelope(_row("p", "a", [{"a": 1.0}]), ["a", "c"])


@pytest.mark.parametrize("best, expected", [
    ({"a": 0.95, "b": 0.2, "c": 0.3}, ("single", "a")),
    ({"a": 0.95, "b": 0.6, "c": 0.3}, ("neither", None)),   # b is between lo and hi: not clearly unreachable
    ({"a": 0.95, "b": 0.91, "c": 0.1}, ("multi", None)),
    ({"a": 0.5, "b": 0.2, "c": 0.3}, ("neither", None)),
    ({"a": 0.9, "b": 0.0, "c": 0.0}, ("single", "a")),       # hi is inclusive
])
def test_classify_absolute(best, expected):
    cuts = {a: {"hi": 0.9, "lo": 0.5} for a in best}
    assert classify(best, cuts) == expected


def test_quantile_thresholds_are_per_axis(tmp_path):
    cfg = MoraConfig(out=str(tmp_path), threshold_mode="quantile", hi=0.75, lo=0.25)
    bests = [{"a": float(i), "b": 10.0 * i} for i in range(5)]
    cuts = thresholds(cfg, bests, ["a", "b"])
    assert cuts["a"] == {"hi": 3.0, "lo": 1.0}
    assert cuts["b"] == {"hi": 30.0, "lo": 10.0}


def test_quantile_thresholds_must_be_in_unit_interval(tmp_path):
    with pytest.raises(AxialError, match="MoraConfig.hi/lo"):
        MoraConfig(out=str(tmp_path), threshold_mode="quantile", hi=2.0, lo=0.5)
    with pytest.raises(AxialError, match="MoraConfig.hi"):
        MoraConfig(out=str(tmp_path), threshold_mode="absolute", hi=0.2, lo=0.5)


def test_isolate_counts_files_and_any_number_of_axes(tmp_path):
    axes_file = tmp_path / "axes.json"
    axes_file.write_text(json.dumps([{"name": n, "injection": f"be {n}"} for n in ("w", "x", "y", "z")]))
    cfg = MoraConfig(out=str(tmp_path / "exp"), axes_file=str(axes_file), threshold_mode="absolute", hi=0.8, lo=0.4)
    lo, hi = 0.1, 0.9
    rows = [
        _row("s1", "w", [{"w": hi, "x": lo, "y": lo, "z": lo}]),
        _row("s2", "x", [{"w": lo, "x": lo, "y": lo, "z": lo}, {"w": lo, "x": hi, "y": lo, "z": lo}]),
        _row("m1", "y", [{"w": hi, "x": lo, "y": hi, "z": lo}]),
        _row("n1", "z", [{"w": lo, "x": lo, "y": lo, "z": lo}]),
    ]
    out = isolate(cfg, rows, tmp_path / "exp")
    assert out["summary"]["counts"] == {"single": 2, "multi": 1, "neither": 1}
    assert out["summary"]["single_by_good_axis"] == {"w": 1, "x": 1}
    assert [p["class"] for p in out["prompts"]] == ["single", "single", "multi", "neither"]
    for name in ("isolate.jsonl", "isolate_summary.json", "isolate_scatter.png"):
        assert (tmp_path / "exp" / name).stat().st_size > 0
