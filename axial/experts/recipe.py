"""Experts recipes: one YAML file names the base model, each axis's data / method / split, and the shared
hyper-parameters, so `axial train-experts RECIPE.yaml data_root=...` trains every axis in one go.

Recipe layout (see axial/recipes/embedded_default.yaml):
  model: embedded
  out: experts/embedded                 # each axis trains into OUT/<axis>
  variables: {data_root: null}          # ${data_root} in strings; null means the user must set it
  defaults: {lora_r: 8, ...}            # ExpertConfig fields shared by all axes
  axes:
    helpful: {data: [...], method: sft, split: train, limit: 800}

Overrides (`key=value`): a variable name sets the variable; an ExpertConfig field sets it for all axes;
`AXIS.field=value` sets it for one axis; `out=DIR` / `model=SPEC` replace the recipe's.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from axial.errors import AxialError
from axial.experts.config import ExpertConfig
from axial.io import atomic_write_json

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PER_AXIS_FORBIDDEN = ("axis", "out", "model")
TOP_LEVEL = ("model", "out", "variables", "defaults", "axes", "description")


@dataclass
class ExpertsRecipe:
    model: str
    out: str
    axes: dict[str, dict[str, Any]]
    defaults: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = "recipe"

    def expert_configs(self) -> dict[str, ExpertConfig]:
        """One validated ExpertConfig per axis (errors name the recipe field)."""
        configs = {}
        for axis, spec in self.axes.items():
            where = f"{self.source}: axes.{axis}"
            merged = {**self.defaults, **spec}
            values = _substitute(merged, self.variables, where)
            try:
                configs[axis] = ExpertConfig(axis=axis, model=self.model, out=str(Path(self.out) / axis), **values)
            except AxialError as e:
                raise AxialError(f"{where}: {e}") from e
        return configs


def builtin_recipe(name: str) -> Path:
    path = resources.files("axial") / "recipes" / f"{name}.yaml"
    if not path.is_file():
        raise AxialError(f"no built-in recipe '{name}'")
    return Path(str(path))


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> ExpertsRecipe:
    """Parse and validate a recipe file (a path, or the name of a built-in recipe such as embedded_default)."""
    path = Path(path)
    if not path.exists() and path.suffix == "" and "/" not in str(path):
        path = builtin_recipe(str(path))
    if not path.exists():
        raise AxialError(f"recipe {path}: not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise AxialError(f"recipe {path}: cannot parse YAML: {e}") from e
    return recipe_from_dict(data, source=str(path), overrides=overrides)


def recipe_from_dict(data: Any, *, source: str = "recipe", overrides: list[str] | None = None) -> ExpertsRecipe:
    if not isinstance(data, dict):
        raise AxialError(f"{source}: expected a mapping with keys {list(TOP_LEVEL)}")
    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise AxialError(f"{source}: unknown field(s) {unknown}; known: {list(TOP_LEVEL)}")
    for key in ("model", "out"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise AxialError(f"{source}: field '{key}' is missing or not a string")
    for key in ("variables", "defaults"):
        if not isinstance(data.get(key) or {}, dict):
            raise AxialError(f"{source}: field '{key}' must be a mapping")
    axes = data.get("axes")
    if not isinstance(axes, dict) or not axes:
        raise AxialError(f"{source}: field 'axes' must be a non-empty mapping of axis name -> settings")
    fields = {f.name for f in dataclasses.fields(ExpertConfig)}
    _check_keys(data.get("defaults") or {}, fields, f"{source}: defaults")
    for axis, spec in axes.items():
        if not isinstance(spec, dict):
            raise AxialError(f"{source}: axes.{axis} must be a mapping")
        _check_keys(spec, fields, f"{source}: axes.{axis}")
    recipe = ExpertsRecipe(model=data["model"], out=data["out"], axes={a: dict(s) for a, s in axes.items()},
                           defaults=dict(data.get("defaults") or {}),
                           variables=dict(data.get("variables") or {}),
                           description=str(data.get("description", "")), source=source)
    _apply_overrides(recipe, overrides or [], fields)
    recipe.expert_configs()
    return recipe


def _check_keys(spec: dict, fields: set[str], where: str) -> None:
    for key in spec:
        if key in _PER_AXIS_FORBIDDEN:
            raise AxialError(f"{where}.{key}: set by the recipe (axis name / top-level out and model)")
        if key not in fields:
            raise AxialError(f"{where}.{key}: unknown field; known: {sorted(fields - set(_PER_AXIS_FORBIDDEN))}")


def _apply_overrides(recipe: ExpertsRecipe, overrides: list[str], fields: set[str]) -> None:
    for item in overrides:
        if "=" not in item:
            raise AxialError(f"override '{item}': expected key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        axis, _, name = key.rpartition(".")
        name = name.replace("-", "_")
        if key in recipe.variables:
            recipe.variables[key] = value
        elif key in ("out", "model"):
            setattr(recipe, key, str(value))
        elif axis:
            if axis not in recipe.axes:
                raise AxialError(f"override '{item}': recipe has no axis '{axis}'; axes: {list(recipe.axes)}")
            _check_keys({name: value}, fields, f"override axes.{axis}")
            recipe.axes[axis][name] = value
        else:
            _check_keys({name: value}, fields, "override")
            recipe.defaults[name] = value
            for spec in recipe.axes.values():
                spec.pop(name, None)


def _substitute(value: Any, variables: dict[str, Any], where: str) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, variables, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match) -> str:
        name = m.group(1)
        if name not in variables:
            raise AxialError(f"{where}: unknown variable ${{{name}}}; declared: {sorted(variables)}")
        if variables[name] in (None, ""):
            raise AxialError(f"{where}: variable '{name}' is not set; pass {name}=VALUE "
                             "(e.g. `axial train-experts RECIPE.yaml data_root=/path/to/data`)")
        return str(variables[name])

    return _VAR.sub(repl, value)


def train_experts(recipe: ExpertsRecipe | str | Path, overrides: list[str] | None = None,
                  axes: list[str] | None = None) -> dict[str, Path]:
    """Train (or resume, or skip when finished) every axis of a recipe; returns axis -> adapter folder."""
    from axial.experts.train import train_expert

    if not isinstance(recipe, ExpertsRecipe):
        recipe = load_recipe(recipe, overrides)
    elif overrides:
        raise AxialError("train_experts: pass overrides to load_recipe, not with an already loaded recipe")
    configs = recipe.expert_configs()
    for name in axes or []:
        if name not in configs:
            raise AxialError(f"axis '{name}': not in recipe {recipe.source}; axes: {list(configs)}")
    Path(recipe.out).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(recipe.out) / "recipe.json", dataclasses.asdict(recipe))
    return {axis: train_expert(cfg) for axis, cfg in configs.items() if not axes or axis in axes}
