from dataclasses import dataclass, field

import pytest

from axial.config import Config
from axial.errors import AxialError


@dataclass
class Demo(Config):
    lr: float = 1e-4
    steps: int = 10
    names: list[str] = field(default_factory=list)
    flag: bool = False
    note: str | None = None

    def validate(self):
        if self.lr <= 0:
            raise AxialError(f"Demo.lr: must be > 0, got {self.lr}")


def test_overrides_coerce_types():
    c = Demo().with_overrides(["lr=0.5", "steps=3", "names=a,b", "flag=true", "note=hi"])
    assert (c.lr, c.steps, c.names, c.flag, c.note) == (0.5, 3, ["a", "b"], True, "hi")


def test_override_unknown_field_names_it():
    with pytest.raises(AxialError, match="unknown field 'lrr'"):
        Demo().with_overrides(["lrr=1"])


def test_override_needs_equals():
    with pytest.raises(AxialError, match="expected key=value"):
        Demo().with_overrides(["lr"])


def test_validation_runs_on_construction_and_override():
    with pytest.raises(AxialError, match="Demo.lr"):
        Demo(lr=-1)
    with pytest.raises(AxialError, match="Demo.lr"):
        Demo().with_overrides(["lr=-2"])


def test_bad_type_names_field():
    with pytest.raises(AxialError, match="Demo.steps"):
        Demo(steps="many")
    with pytest.raises(AxialError, match="Demo.steps: expected an integer"):
        Demo(steps=2.5)


def test_save_load_round_trip(tmp_path):
    c = Demo(lr=0.25, names=["x"])
    p = c.save(tmp_path / "cfg.json")
    assert Demo.load(p) == c


def test_load_rejects_unknown_and_bad_json(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"lr": 1, "bogus": 2}')
    with pytest.raises(AxialError, match="bogus"):
        Demo.load(p)
    p.write_text('{"lr": 1,\n oops}')
    with pytest.raises(AxialError, match=r"c.json:2"):
        Demo.load(p)
