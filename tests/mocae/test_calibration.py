import numpy as np
import pytest
import torch

from axial.errors import AxialError
from axial.mocae.calibration import (
    TemperatureScaling,
    brier_score,
    calibration_metrics,
    calibrator_from_dict,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_diagram,
)


def _synthetic(n=4000, k=3, scale=2.0, seed=0, overconfidence=1.0):
    """Labels drawn from softmax(z): calibrated at overconfidence=1; logits*c are over-confident for c>1."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * scale
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    labels = (rng.random((n, 1)) > p.cumsum(1)).sum(1)
    return z * overconfidence, labels


def test_ece_hand_computed():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 1])
    # Confidences 0.9, 0.8, 0.6, 0.7 fall in four separate 1/15-wide bins; correct = 1, 0, 1, 1.
    expected = (abs(1 - 0.9) + abs(0 - 0.8) + abs(1 - 0.6) + abs(1 - 0.7)) / 4
    assert expected_calibration_error(probs, labels) == pytest.approx(expected)
    # With 2 bins, 0.6/0.7/0.8/0.9 share the upper bin: |3/4 - 0.75| = 0.
    assert expected_calibration_error(probs, labels, n_bins=2) == pytest.approx(0.0)


def test_brier_and_nll_hand_computed():
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])
    labels = np.array([0, 0])
    assert brier_score(probs, labels) == pytest.approx((0.25 + 0.25 + 0) / 2)
    assert negative_log_likelihood(probs, labels) == pytest.approx(-np.log(0.5) / 2)


def test_metrics_reject_bad_labels():
    with pytest.raises(AxialError, match="labels must be in"):
        expected_calibration_error(np.array([[0.5, 0.5]]), np.array([2]))


def test_calibrated_data_keeps_temperature_near_one():
    z, y = _synthetic()
    ts = TemperatureScaling().fit(z, y)
    assert ts.temperature == pytest.approx(1.0, abs=0.1)


def test_overconfident_logits_get_temperature_above_one_and_lower_ece():
    z, y = _synthetic(overconfidence=3.0)
    fit, held = slice(0, 2000), slice(2000, None)
    ts = TemperatureScaling().fit(z[fit], y[fit])
    assert ts.temperature == pytest.approx(3.0, rel=0.15)
    before = expected_calibration_error(torch.softmax(torch.tensor(z[held]), -1).numpy(), y[held])
    after = expected_calibration_error(ts.apply(z[held]), y[held])
    assert after < before / 2 and after < 0.05


def test_temperature_roundtrips_through_its_dict():
    z, _ = _synthetic(n=10)
    ts = TemperatureScaling(2.5)
    again = calibrator_from_dict(ts.to_dict())
    np.testing.assert_allclose(again.apply(z), ts.apply(z))
    assert calibrator_from_dict({"method": "none"}).apply(z).sum(1) == pytest.approx(np.ones(10))
    with pytest.raises(AxialError, match="unknown method"):
        calibrator_from_dict({"method": "fractal"})


def test_metrics_ci_brackets_value_and_counts_groups(tmp_path):
    z, y = _synthetic(n=300, overconfidence=2.0)
    probs = torch.softmax(torch.tensor(z), -1).numpy()
    groups = np.arange(300) // 3  # three rows per example
    m = calibration_metrics(probs, y, groups, resamples=200)
    assert m["ece"]["n"] == 100 and m["rows"] == 300
    for name in ("accuracy", "ece", "brier", "nll"):
        lo, hi = m[name]["ci95"]
        assert lo <= m[name]["value"] <= hi
    out = reliability_diagram({"before": (probs, y), "after": (TemperatureScaling(2.0).apply(z), y)},
                              tmp_path / "rel.png")
    assert out.stat().st_size > 1000
