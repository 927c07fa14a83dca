"""Typed checking of config dataclasses: every value is the type its field declares, finite, or a clear error."""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from tflottery.errors import ConfigError


def unhashed(default: Any = None, **kwargs) -> Any:
    """A field that does not define a run (speed, logging, paths): it never enters the run's identity."""
    return dataclasses.field(default=default, metadata={"hashed": False}, **kwargs)


def check_types(obj: Any, section: str) -> None:
    """Coerce every field of dataclass `obj` to its declared type (int 3.0 -> 3, float 1 -> 1.0) or raise."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        setattr(obj, f.name, coerce(getattr(obj, f.name), hints[f.name], f"{section}.{f.name}"))


def coerce(value: Any, tp: Any, name: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], name)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}={value!r} must be true or false.")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}={value!r} must be an integer.")
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise ConfigError(f"{name}={value!r} must be a whole number.")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}={value!r} must be a number.")
        if not math.isfinite(value):
            raise ConfigError(f"{name}={value!r} must be a finite number.")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}={value!r} must be a string.")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}={value!r} must be a list, e.g. --{name.split('.')[-1]}='[...]'.")
        return [coerce(v, args[0], f"{name}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}={value!r} must be a mapping, e.g. --{name.split('.')[-1]}='{{\"fc1\": 0.3}}'.")
        return {coerce(k, args[0], f"{name} key"): coerce(v, args[1], f"{name}[{k!r}]") for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(value, tp):
        return value  # a section: checked by its own validate()
    raise TypeError(f"unsupported field type {tp!r} for {name}")  # a bug in a config class, not user input


def build(cls, values: Any, section: str):
    """A config section from a dict, naming any unknown key, with types checked."""
    if isinstance(values, cls):
        values = dataclasses.asdict(values)
    if not isinstance(values, dict):
        raise ConfigError(f"{section} must be a mapping of its fields, got {type(values).__name__}.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{section}: unknown field(s) {sorted(map(str, unknown))}; known: {sorted(names)}.")
    obj = cls(**values)
    check_types(obj, section)
    return obj


def hashed_fields(obj: Any) -> Any:
    """The fields of a dataclass that define a run: unhashed and switched-off (None, False, empty) ones left out."""
    if not dataclasses.is_dataclass(obj):
        return obj
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not f.metadata.get("hashed", True) or value is None or value is False or value in ([], {}):
            continue
        out[f.name] = hashed_fields(value)
    return out


def in_range(name: str, value: "float | None", low: float, high: float, *, low_open: bool = False,
             high_open: bool = False, hint: str = "") -> None:
    if value is None:
        return
    ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        bounds = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"{name}={value!r} must lie in {bounds}" + (f": {hint}" if hint else "."))
