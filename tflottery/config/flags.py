"""The one merge of TOML tables, command-line flags and Python dicts into a RunConfig tree."""
from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

from tflottery.config.spec import SECTIONS, TOP_LEVEL
from tflottery.errors import ConfigError


def flag_names() -> list[str]:
    return sorted({f for cls in SECTIONS.values() for f in cls.__dataclass_fields__} | TOP_LEVEL | {"model"})


def apply_flag(tree: dict, key: str, value: Any) -> None:
    """Set one flag in a RunConfig dict.

    `key` is a field name that is unique across sections (`levels`, `lr`, `dataset`), `model`
    for the model's name, a top-level field (`seed`), or a dotted path (`training.steps`).
    """
    if "." in key:
        section, _, name = key.partition(".")
        if section not in SECTIONS or name not in SECTIONS[section].__dataclass_fields__:
            raise ConfigError(f"Unknown flag --{key}; sections are {', '.join(SECTIONS)} with fields "
                              f"{', '.join(flag_names())}.")
        tree.setdefault(section, {})[name] = value
    elif key == "model":
        tree.setdefault("model", {})["name"] = value
    elif key in TOP_LEVEL:
        tree[key] = value
    else:
        owners = [s for s, cls in SECTIONS.items() if key in cls.__dataclass_fields__]
        if len(owners) != 1:
            raise ConfigError(f"Unknown flag --{key}; use one of {', '.join(flag_names())}, or a dotted "
                              "path such as --training.steps=2ep.")
        tree.setdefault(owners[0], {})[key] = value


def config_from_flags(flags: dict, base: "dict | None" = None):
    """A validated RunConfig from flags over `base` (a RunConfig dict)."""
    from tflottery.config.spec import RunConfig

    tree: dict = {k: dict(v) if isinstance(v, dict) else v for k, v in (base or {}).items()}
    for key, value in flags.items():
        apply_flag(tree, key, value)
    return RunConfig.from_dict(tree).validate()


def describe_flags() -> str:
    """Every flag with its default and the comment beside its field, for --help."""
    lines = []
    for section, cls in SECTIONS.items():
        comments = dict(re.findall(r"^\s+(\w+): [^#\n]*#\s*(.*)$", inspect.getsource(cls), re.M))
        lines.append(f"{section}:")
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            lines.append(f"  --{f.name}={default!r}" + (f"  ({comments[f.name]})" if f.name in comments else ""))
    lines.append("run: --seed=0 --runs_dir='runs'")
    return "\n".join(lines)
