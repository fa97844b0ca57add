from importlib import resources

import pytest

from axial.axes import axis_names
from axial.data import builtin_axes_available, builtin_axis_set, load_records
from axial.data.records import PreferenceRecord, SFTRecord
from axial.errors import AxialError


def test_every_default_axis_has_a_set():
    assert set(axis_names()) <= set(builtin_axes_available())


@pytest.mark.parametrize("axis", builtin_axes_available())
def test_set_is_valid_and_large_enough(axis):
    path = resources.files("axial.data") / "axis_sets" / f"{axis}.jsonl"
    with resources.as_file(path) as p:
        res = load_records(p, "preference")
    assert res.n_invalid == 0 and not res.notes
    pairs = res.records
    assert len(pairs) >= 60
    assert all(p.axis == axis for p in pairs)
    assert len({p.id for p in pairs}) == len(pairs)
    assert len({p.prompt.lower() for p in pairs}) == len(pairs)
    for p in pairs:
        assert p.chosen.strip() != p.rejected.strip()
        assert len(p.chosen.split()) <= 80, p.id  # short answers keep CPU training fast


def test_sft_and_preference_views(tmp_path):
    sft = builtin_axis_set("harmless")
    pairs = builtin_axis_set("harmless", "preference")
    assert isinstance(sft[0], SFTRecord) and isinstance(pairs[0], PreferenceRecord)
    assert [s.response for s in sft] == [p.chosen for p in pairs]
    assert sft[0].source == "builtin:harmless"


def test_train_and_test_partition_the_set():
    everything = {r.id for r in builtin_axis_set("helpful")}
    train = {r.id for r in builtin_axis_set("helpful", split="train")}
    test = {r.id for r in builtin_axis_set("helpful", split="test")}
    assert train and test and not train & test and train | test == everything


def test_errors():
    with pytest.raises(AxialError, match="no built-in set for axis 'creative'"):
        builtin_axis_set("creative")
    with pytest.raises(AxialError, match="kind 'qa'"):
        builtin_axis_set("helpful", kind="qa")
