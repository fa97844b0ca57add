import pytest

from axial.errors import AxialError
from axial.experts.config import ExpertConfig


def test_defaults_are_valid():
    cfg = ExpertConfig(axis="helpful", data=["x.json"], out="out")
    assert cfg.inject and cfg.method == "sft" and cfg.lora_alpha == 2 * cfg.lora_r


@pytest.mark.parametrize("changes, field", [
    ({"axis": "kindness"}, "ExpertConfig.axis"),
    ({"axis": ""}, "ExpertConfig.axis"),
    ({"out": ""}, "ExpertConfig.out"),
    ({"method": "ppo"}, "ExpertConfig.method"),
    ({"split": "test"}, "ExpertConfig.split"),
    ({"learning_rate": 0}, "ExpertConfig.learning_rate"),
    ({"lora_r": 0}, "ExpertConfig.lora_r"),
    ({"batch_size": "four"}, "ExpertConfig.batch_size"),
    ({"dtype": "fp8"}, "ExpertConfig.dtype"),
    ({"method": "dpo", "beta": 0}, "ExpertConfig.beta"),
    ({"limit": 0}, "ExpertConfig.limit"),
])
def test_validation_names_the_field(changes, field):
    args = {"axis": "helpful", "data": ["x.json"], "out": "out", **changes}
    with pytest.raises(AxialError, match=field.replace(".", r"\.")):
        ExpertConfig(**args)


def test_overrides_parse_types():
    cfg = ExpertConfig(axis="honest", out="o").with_overrides(["lora_r=16", "inject=false", "limit=50"])
    assert (cfg.lora_r, cfg.inject, cfg.limit) == (16, False, 50)
    with pytest.raises(AxialError, match="unknown field 'lora_rank'"):
        cfg.with_overrides(["lora_rank=4"])
