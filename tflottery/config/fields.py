"""Typed config dataclasses: every field declares its type and its help; values are coerced strictly.

A field's help lives in its metadata (`setting(default, "help")`), so `--help` shows what the
code declares. `unhashed` fields (speed, logging, paths) never enter a run's identity.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any

from tflottery.core import values
from tflottery.core.errors import ConfigError


def setting(default: Any = None, help: str = "", *, factory: Any = None, hashed: bool = True) -> Any:
    """A config field with its help text; `factory` for mutable defaults."""
    metadata = {"help": help, "hashed": hashed}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def required(help: str = "") -> Any:
    """A field without a default: it must be given."""
    return dataclasses.field(metadata={"help": help, "hashed": True})


def unhashed(default: Any = None, help: str = "", **kwargs) -> Any:
    """A field that does not define a run (speed, logging, paths): it never enters the run's identity."""
    return setting(default, help, hashed=False, **kwargs)


def help_of(f: dataclasses.Field) -> str:
    return f.metadata.get("help", "")


def default_of(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def check_types(obj: Any, section: str) -> None:
    """Coerce every field of dataclass `obj` to its declared type (int 3.0 -> 3, float 1 -> 1.0) or raise."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        setattr(obj, f.name, coerce(getattr(obj, f.name), hints[f.name], f"{section}.{f.name}"))


def coerce(value: Any, tp: Any, name: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) > 1:
            for option in inner:
                try:
                    return coerce(value, option, name)
                except ConfigError:
                    continue
            raise ConfigError(f"{name}={value!r} must be one of {', '.join(getattr(a, '__name__', str(a)) for a in inner)}.")
        return coerce(value, inner[0], name)
    if tp is bool:
        return values.as_bool(value, name)
    if tp is int:
        return values.as_int(value, name)
    if tp is float:
        return values.as_float(value, name)
    if tp is str:
        return values.as_str(value, name)
    if tp in (dict, list):
        if not isinstance(value, tp):
            raise ConfigError(f"{name}={value!r} must be a {'mapping' if tp is dict else 'list'}.")
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
    """A config dataclass from a dict, naming any unknown key, with types checked."""
    if isinstance(values, cls):
        values = dataclasses.asdict(values)
    if not isinstance(values, dict):
        raise ConfigError(f"{section} must be a mapping of its fields, got {type(values).__name__}.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{section}: unknown field(s) {sorted(map(str, unknown))}; known: {sorted(names)}.")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{section}: missing field(s) {missing}.")
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


def describe(cls, prefix: str = "  ", current=None) -> list[str]:
    """`--field=value  (help)` lines of a dataclass, for --help: the default, or `current`'s value where it
    differs (with the default named)."""
    lines = []
    for f in dataclasses.fields(cls):
        text, default = help_of(f), default_of(f)
        value = getattr(current, f.name, default) if current is not None else default
        note = f"default {default!r}; " if value != default else ""
        lines.append(f"{prefix}--{f.name}={value!r}" + (f"  ({note}{text})" if text or note else ""))
    return lines
