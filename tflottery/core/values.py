"""Strict reading of user values: a boolean is true or false, a number is a finite number in its range.

Flags arrive as whatever fire made of them (`--overwrite=false` is the string "false", which
Python would take as true), and Python callers pass anything. Every public function and every
command reads its arguments through these, so a value that does not mean what it says is one
`ConfigError` naming the parameter, never a silent opposite.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from tflottery.core.errors import ConfigError

TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def as_bool(value: Any, name: str) -> bool:
    """True/False, 1/0, or the words true/false (yes/no); anything else is an error."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    raise ConfigError(f"{name}={value!r} must be true or false (or 1/0).")


def as_literal_true(value: Any, name: str) -> bool:
    """A switch that turns a safety check off: only a literal True (or the word true) turns it on."""
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        return True
    if value is False or value is None or (isinstance(value, str) and value.strip().lower() == "false"):
        return False
    raise ConfigError(f"{name}={value!r} must be exactly true or false: it switches a safety check off.")


def as_int(value: Any, name: str, low: Optional[int] = None, high: Optional[int] = None, hint: str = "") -> int:
    """A whole number (3 or 3.0) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}={value!r} must be an integer.")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ConfigError(f"{name}={value!r} must be a whole number.")
    value = int(value)
    _check_range(name, value, low, high, hint)
    return value


def as_float(value: Any, name: str, low: Optional[float] = None, high: Optional[float] = None, hint: str = "") -> float:
    """A finite number within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}={value!r} must be a number.")
    if not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} must be a finite number.")
    value = float(value)
    _check_range(name, value, low, high, hint)
    return value


def as_str(value: Any, name: str, choices: Optional[tuple] = None) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name}={value!r} must be a string" + (f": one of {', '.join(choices)}." if choices else "."))
    if choices is not None and value not in choices:
        raise ConfigError(f"{name}={value!r} is unknown: use {', '.join(choices)}.")
    return value


def _check_range(name, value, low, high, hint) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ConfigError(f"{name}={value!r} must lie in {bounds}" + (f": {hint}" if hint else "."))
