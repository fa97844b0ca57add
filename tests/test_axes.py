import pytest

from axial.axes import axis_names, default_axes, get_axis, load_axes
from axial.errors import AxialError


def test_defaults_have_injections_and_benchmarks():
    axes = default_axes()
    assert axis_names(axes) == ["helpful", "harmless", "honest"]
    assert all(a.injection and a.benchmarks for a in axes)


def test_user_axes_from_yaml(tmp_path):
    p = tmp_path / "axes.yaml"
    p.write_text("axes:\n- name: concise\n  injection: Be brief.\n- name: polite\n  injection: Be kind.\n")
    axes = load_axes(p)
    assert axis_names(axes) == ["concise", "polite"]
    assert get_axis("polite", axes).injection == "Be kind."


@pytest.mark.parametrize("text,match", [
    ("- name: Bad Name\n  injection: x\n", "axis #0"),
    ("- name: a\n", "field 'injection'"),
    ("- name: a\n  injection: x\n  colour: red\n", "unknown field"),
    ("- name: a\n  injection: x\n- name: a\n  injection: y\n", "duplicate"),
    ("[]\n", "non-empty list"),
])
def test_bad_axes_files_name_the_problem(tmp_path, text, match):
    p = tmp_path / "axes.yaml"
    p.write_text(text)
    with pytest.raises(AxialError, match=match):
        load_axes(p)


def test_unknown_axis():
    with pytest.raises(AxialError, match="unknown axis 'funny'"):
        get_axis("funny")
