import pytest
import yaml

from axial.errors import AxialError
from axial.experts.recipe import load_recipe, recipe_from_dict


def _recipe(**changes):
    base = {"model": "embedded", "out": "experts", "variables": {"data_root": None},
            "defaults": {"lora_r": 8, "split": "train"},
            "axes": {"helpful": {"data": ["${data_root}/alpaca.json"], "limit": 10},
                     "honest": {"data": ["${data_root}/tqa.csv", "builtin:honest"]}}}
    base.update(changes)
    return base


def test_shipped_default_recipe_needs_data_root_and_states_train_splits():
    with pytest.raises(AxialError, match=r"axes\.helpful\.data\[0\]: variable 'data_root' is not set"):
        load_recipe("embedded_default")
    recipe = load_recipe("embedded_default", ["data_root=/data", "out=/tmp/x"])
    configs = recipe.expert_configs()
    assert set(configs) == {"helpful", "harmless", "honest"}
    assert all(c.split == "train" and c.inject for c in configs.values())
    assert configs["helpful"].data == ["/data/stanford_alpaca/alpaca_5000.json"]
    assert configs["honest"].out == "/tmp/x/honest" and "builtin:honest" in configs["honest"].data


def test_overrides_variables_shared_and_per_axis():
    r = recipe_from_dict(_recipe(), overrides=["data_root=/d", "lora_r=4", "honest.method=dpo", "limit=3"])
    c = r.expert_configs()
    assert c["honest"].data[0] == "/d/tqa.csv" and c["honest"].method == "dpo" and c["helpful"].method == "sft"
    assert c["helpful"].lora_r == 4 and c["helpful"].limit == 3  # a shared override replaces per-axis values


@pytest.mark.parametrize("recipe, match", [
    (_recipe(axes={"helpful": {"data": ["x"], "methd": "sft"}}), r"axes\.helpful\.methd: unknown field"),
    (_recipe(axes={"helpful": {"data": ["x"], "method": "ppo"}}), r"axes\.helpful: ExpertConfig\.method"),
    (_recipe(axes={"kind": {"data": ["x"]}}), r"axes\.kind: ExpertConfig\.axis: unknown axis"),
    (_recipe(axes={"helpful": {"data": ["x"], "out": "y"}}), r"axes\.helpful\.out: set by the recipe"),
    (_recipe(defaults={"lr": 1}), r"defaults\.lr: unknown field"),
    (_recipe(defaults={"split": "test"}), r"ExpertConfig\.split"),
    (_recipe(axes={"helpful": {"data": ["${nope}/x"]}}), r"unknown variable \$\{nope\}"),
    (_recipe(axes={}), "field 'axes'"),
    (_recipe(model=None), "field 'model'"),
    (dict(_recipe(), extra=1), r"unknown field\(s\) \['extra'\]"),
])
def test_recipe_errors_name_the_field(recipe, match):
    with pytest.raises(AxialError, match=match):
        recipe_from_dict(recipe, source="r.yaml", overrides=["data_root=/d"])


def test_bad_yaml_and_bad_override(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model: [unclosed")
    with pytest.raises(AxialError, match="cannot parse YAML"):
        load_recipe(path)
    path.write_text(yaml.safe_dump(_recipe()))
    with pytest.raises(AxialError, match="recipe has no axis 'harmless'"):
        load_recipe(path, ["data_root=/d", "harmless.limit=3"])
    with pytest.raises(AxialError, match="expected key=value"):
        load_recipe(path, ["data_root"])
