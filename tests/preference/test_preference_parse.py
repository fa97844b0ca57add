import logging

import numpy as np
import pytest

from axial.errors import AxialError
from axial.preference import Preference, convex_weights, parse_preference, simplex_grid


def test_parse_string_and_dict_give_the_same_simplex_vector():
    p = parse_preference("helpful=0.7, harmless=0.3")
    assert p.axes == ("helpful", "harmless", "honest")
    assert p.values == pytest.approx((0.7, 0.3, 0.0))
    assert parse_preference({"harmless": 0.3, "helpful": 0.7}) == p
    assert str(p) == "helpful=0.7,harmless=0.3"


def test_normalisation_is_announced(caplog):
    with caplog.at_level(logging.WARNING, logger="axial.preference"):
        p = parse_preference("helpful=7,honest=3")
    assert p.values == pytest.approx((0.7, 0.0, 0.3))
    assert "normalised" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="axial.preference"):
        parse_preference("helpful=1")
    assert caplog.text == ""


@pytest.mark.parametrize("spec, match", [
    ("helpfull=1", "field 'helpfull': unknown axis"),
    ("helpful=-0.1,honest=1", "field 'helpful': must be non-negative"),
    ("helpful=nan", "field 'helpful': must be finite"),
    ("helpful=inf", "field 'helpful': must be finite"),
    ("helpful=0,honest=0", "all weights are zero"),
    ("helpful=abc", "field 'helpful': 'abc' is not a number"),
    ("helpful", "not axis=weight"),
    ("helpful=1,helpful=2", "field 'helpful': given twice"),
    ("", "empty"),
])
def test_bad_preferences_name_the_field(spec, match):
    with pytest.raises(AxialError, match=match):
        parse_preference(spec)


def test_custom_axes_are_respected():
    p = parse_preference("concise=1,polite=3", ["concise", "polite"])
    assert p.values == pytest.approx((0.25, 0.75))
    with pytest.raises(AxialError, match="unknown axis"):
        parse_preference("helpful=1", ["concise", "polite"])


def test_simplex_grid_covers_the_simplex():
    grid = simplex_grid(["a", "b", "c"], 5)
    assert len(grid) == 15  # C(4 + 2, 2)
    assert all(sum(p.values) == pytest.approx(1) and min(p.values) >= 0 for p in grid)
    assert Preference(("a", "b", "c"), (1.0, 0.0, 0.0)) in grid


def test_convex_weights_inside_the_hull_are_exact_and_local():
    points = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0]], dtype=float)
    w1, res = convex_weights([0.4, 0.5, 0.1], points, n_nearest=3)
    assert res < 1e-6
    assert w1.sum() == pytest.approx(1) and (w1 >= 0).all()
    np.testing.assert_allclose(w1 @ points, [0.4, 0.5, 0.1], atol=1e-6)
    w1, _ = convex_weights([0.5, 0.5, 0.0], points, n_nearest=1)
    np.testing.assert_allclose(w1, [0, 0, 0, 1], atol=1e-9)


def test_convex_weights_outside_the_hull_report_the_residual():
    points = np.array([[1, 0, 0], [0, 1, 0]], dtype=float)
    w1, res = convex_weights([0.0, 0.0, 1.0], points)
    assert res > 0.5 and w1.sum() == pytest.approx(1)
