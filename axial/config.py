"""Typed dataclass configs: validated on construction, overridable with key=value, saved as JSON beside outputs."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from axial.errors import AxialError, DataError
from axial.io import atomic_write_json

T = TypeVar("T", bound="Config")


@dataclasses.dataclass
class Config:
    """Base for every axial config. Subclasses override `validate()` and raise AxialError naming the field."""

    def __post_init__(self) -> None:
        self._coerce_types()
        self.validate()

    def validate(self) -> None:  # pragma: no cover - overridden
        pass

    def _coerce_types(self) -> None:
        # key=value overrides and JSON give strings / lists; convert to the annotated type so that
        # `lr=1e-4` on the command line and `"lr": 0.0001` in a file mean the same thing.
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            setattr(self, f.name, _coerce(value, hints.get(f.name, Any), f"{type(self).__name__}.{f.name}"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(path, self.to_dict(), sort_keys=True, default=str)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], *, source: str = "config") -> T:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise AxialError(f"{source}: unknown field(s) {unknown} for {cls.__name__}; known: {sorted(names)}")
        return cls(**data)

    @classmethod
    def load(cls: type[T], path: str | Path) -> T:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise AxialError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from e
        return cls.from_dict(data, source=str(path))

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)

    def with_overrides(self: T, overrides: list[str] | None) -> T:
        """Apply torchtune-style `key=value` overrides (values parsed as JSON when they parse, else strings)."""
        if not overrides:
            return self
        names = {f.name for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for item in overrides:
            if "=" not in item:
                raise AxialError(f"override '{item}': expected key=value")
            key, raw = item.split("=", 1)
            key = key.strip().replace("-", "_")
            if key not in names:
                raise AxialError(f"override '{item}': unknown field '{key}' for {type(self).__name__}; "
                                 f"known: {sorted(names)}")
            try:
                changes[key] = json.loads(raw)
            except json.JSONDecodeError:
                changes[key] = raw
        return self.replace(**changes)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    if value is None or hint is Any:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except AxialError as e:
                errors.append(str(e))
        raise AxialError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise AxialError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        out = [_coerce(v, inner, where) for v in value]
        return tuple(out) if origin is tuple else out
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise AxialError(f"{where}: expected a mapping, got {value!r}")
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise AxialError(f"{where}: expected true/false, got {value!r}")
    if hint in (int, float, str):
        if isinstance(value, bool) and hint is not str:
            raise AxialError(f"{where}: expected {hint.__name__}, got {value!r}")
        try:
            out = hint(value)
        except (TypeError, ValueError) as e:
            raise AxialError(f"{where}: expected {hint.__name__}, got {value!r}") from e
        if hint is int and isinstance(value, float) and value != out:
            raise AxialError(f"{where}: expected an integer, got {value!r}")
        return out
    return value


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON file that must hold one object; errors name the file and line."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", path=str(path), line=e.lineno) from e
    if not isinstance(data, dict):
        raise DataError("expected a JSON object", path=str(path))
    return data
