"""Plain-data configuration: dataclasses loaded strictly from YAML/dicts.

Unknown keys are errors (no silent ignoring); nested dataclasses are built recursively;
command-line overrides use dotted paths (``model.lora.rank=16``) parsed as YAML scalars.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mobile_vla.errors import ConfigError

T = TypeVar("T")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _unwrap_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def from_dict(cls: type[T], data: dict[str, Any] | None, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys.

    Args:
        cls: a dataclass type whose fields may themselves be dataclasses.
        data: mapping of field name to value; ``None`` means all defaults.
        path: dotted prefix used in error messages.
    """
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"unknown config key(s) {', '.join(where + k for k in unknown)}; "
            f"expected one of: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        tp = _unwrap_optional(hints[name])
        sub = f"{path}.{name}" if path else name
        if _is_dataclass_type(tp) and value is not None:
            kwargs[name] = from_dict(tp, _over_default(fields[name], value), sub)
        else:
            kwargs[name] = _check_scalar(tp, value, sub)
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a dataclass's own check (__post_init__): say where in the config
        raise ConfigError(f"{path or cls.__name__}: {exc}") from None


def _over_default(field: dataclasses.Field, value: Any) -> Any:
    """A partial mapping for a nested dataclass field, laid over that field's own default.

    A field's default instance may differ from its class's defaults (the demo's expert drives a
    wider lane than ``ExpertConfig()``): ``expert.no_side_route=right`` must change that one
    value, not reset the others to the class's.
    """
    if field.default is not dataclasses.MISSING:
        default = field.default
    elif field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    else:
        return value
    if not isinstance(value, dict) or not dataclasses.is_dataclass(default):
        return value
    return _merge(dataclasses.asdict(default), value)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def _check_scalar(tp: Any, value: Any, path: str) -> Any:
    if value is None:
        return None
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # PyYAML (YAML 1.1) reads "3e-4" as a string; users mean a float
            return float(value)
        except ValueError:
            pass
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}")
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{path}: expected int, got {value!r}")
    origin = typing.get_origin(tp)
    if origin in (list, tuple) and not isinstance(value, (list, tuple)):
        raise ConfigError(f"{path}: expected a list, got {value!r}")
    if origin in (list, tuple):
        return list(value) if origin is list else tuple(value)
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """Dataclass → plain dict (JSON/YAML serialisable)."""
    return dataclasses.asdict(obj)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE (e.g. train.max_steps=100)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = value
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """YAML file (optional) + overrides → strict dataclass ``cls``."""
    data = load_yaml(path) if path else {}
    apply_overrides(data, overrides or [])
    return from_dict(cls, data, "")
