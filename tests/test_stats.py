import numpy as np
import pytest

from axial.evaluate.benches import length_controlled_win_rate
from axial.stats import bootstrap_ci, deterministic_subset, hash_order, paired_bootstrap_diff


def test_bootstrap_ci_bernoulli_matches_normal_approximation():
    rng = np.random.default_rng(1)
    x = (rng.random(400) < 0.3).astype(float)
    r = bootstrap_ci(x, resamples=4000, seed=0)
    p = x.mean()
    half = 1.96 * np.sqrt(p * (1 - p) / len(x))
    assert r["n"] == 400 and r["value"] == pytest.approx(p)
    assert r["ci95"][0] == pytest.approx(p - half, abs=0.01)
    assert r["ci95"][1] == pytest.approx(p + half, abs=0.01)


def test_bootstrap_is_deterministic_and_degenerate_on_constants():
    x = np.arange(50) % 3
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci(np.ones(10))["ci95"] == [1.0, 1.0]
    assert bootstrap_ci([])["n"] == 0


def test_paired_diff_is_tighter_than_unpaired():
    rng = np.random.default_rng(0)
    a = rng.random(300)
    b = a + 0.05 + rng.normal(0, 0.01, 300)  # the same items, shifted
    d = paired_bootstrap_diff(a, b, seed=0)
    assert d["value"] == pytest.approx(0.05, abs=0.003)
    assert d["ci95"][0] > 0.04 and d["ci95"][1] < 0.06
    ca, cb = bootstrap_ci(a), bootstrap_ci(b)
    assert (d["ci95"][1] - d["ci95"][0]) < 0.2 * (ca["ci95"][1] - ca["ci95"][0] + cb["ci95"][1] - cb["ci95"][0])
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap_diff(a, b[:-1])


def test_custom_statistic_path():
    rows = np.stack([np.linspace(0, 1, 40), np.arange(40.0)], 1)
    r = bootstrap_ci(rows, lambda x: float(x[:, 1].max()), resamples=200)
    assert r["value"] == 39.0 and r["ci95"][1] == 39.0


def test_deterministic_subset_is_hash_ordered_and_nested():
    ids = [f"q{i}" for i in range(100)]
    s10 = deterministic_subset(ids, 10, seed=0)
    assert s10 == deterministic_subset(ids, 10, seed=0)
    assert s10 != list(range(10))  # not the first N
    assert set(s10) <= set(deterministic_subset(ids, 30, seed=0))  # a bigger limit is a superset
    assert s10 != deterministic_subset(ids, 10, seed=1)
    assert deterministic_subset(ids, None) == list(range(100))
    assert sorted(hash_order(ids)) == list(range(100))


def test_length_controlled_win_rate_removes_a_pure_length_effect():
    rng = np.random.default_rng(0)
    n = 600
    len_ref = rng.integers(100, 400, n).astype(float)
    len_model = len_ref + rng.normal(0, 150, n)
    x = np.tanh((len_model - len_ref) / (len_model - len_ref).std())
    p = 1 / (1 + np.exp(-(0.0 + 2.5 * x)))  # the judge only likes length; at equal length it is 50/50
    rows = np.stack([p, len_model, len_ref], 1)
    assert length_controlled_win_rate(rows) == pytest.approx(0.5, abs=0.02)
    # Same judge, but a model that is always longer: the raw preference rises, the LC rate does not.
    longer = rows.copy()
    longer[:, 1] = len_ref + np.abs(len_model - len_ref)
    xl = np.tanh((longer[:, 1] - len_ref) / (longer[:, 1] - len_ref).std())
    longer[:, 0] = 1 / (1 + np.exp(-2.5 * xl))
    assert longer[:, 0].mean() > 0.7
    assert length_controlled_win_rate(longer) < 0.6
