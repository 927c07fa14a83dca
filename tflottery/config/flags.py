"""The one merge of TOML tables, command-line flags and Python dicts into a RunConfig tree.

A flag is a field name that is unique across sections (`levels`, `lr`, `dataset`), `model`
for the model's name, a top-level field (`seed`), or a dotted path (`training.steps`). Any
other name is taken as a setting of the pruning strategy (`--dense_rate=0.3`); the engine's
resolver checks it against the chosen strategy's settings, and names it if it is not one.
"""
from __future__ import annotations

import copy
from typing import Any

from tflottery.config.fields import describe
from tflottery.config.spec import SECTIONS, TOP_LEVEL
from tflottery.core.errors import ConfigError

SETTINGS = "settings"


def field_names() -> list[str]:
    """Every flag that is a config field (strategy settings aside)."""
    return sorted({f for cls in SECTIONS.values() for f in cls.__dataclass_fields__} | TOP_LEVEL | {"model"})


def apply_flag(tree: dict, key: str, value: Any) -> None:
    """Set one flag in a RunConfig dict (see the module's doc)."""
    if not isinstance(key, str) or not key:
        raise ConfigError(f"A flag name must be a non-empty string, got {key!r}.")
    if "." in key:
        section, _, name = key.partition(".")
        if section == "pruning" and name.startswith(SETTINGS + "."):
            tree.setdefault("pruning", {}).setdefault(SETTINGS, {})[name[len(SETTINGS) + 1:]] = value
            return
        if section not in SECTIONS or name not in SECTIONS[section].__dataclass_fields__:
            raise ConfigError(f"Unknown flag --{key}; sections are {', '.join(SECTIONS)} with fields "
                              f"{', '.join(field_names())}.")
        tree.setdefault(section, {})[name] = value
    elif key == "model":
        tree.setdefault("model", {})["name"] = value
    elif key in TOP_LEVEL:
        tree[key] = value
    else:
        owners = [s for s, cls in SECTIONS.items() if key in cls.__dataclass_fields__]
        if len(owners) > 1:
            raise ConfigError(f"--{key} is a field of {' and '.join(owners)}: use a dotted path, e.g. "
                              f"--{owners[0]}.{key}.")
        if owners:
            tree.setdefault(owners[0], {})[key] = value
        else:  # a setting of the strategy: the resolver checks it
            tree.setdefault("pruning", {}).setdefault(SETTINGS, {})[key] = value


def merge_flags(flags: dict, base: "dict | None" = None) -> dict:
    """A RunConfig dict: `flags` over `base` (a RunConfig dict), neither changed."""
    tree: dict = copy.deepcopy(base or {})
    for key, value in flags.items():
        apply_flag(tree, key, value)
    return tree


def config_from_flags(flags: dict, base: "dict | None" = None):
    """A validated RunConfig from flags over `base` (a RunConfig dict)."""
    from tflottery.config.spec import RunConfig

    return RunConfig.from_dict(merge_flags(flags, base)).validate()


def describe_flags(strategy_settings: "list[str] | None" = None, current=None) -> str:
    """Every config flag with its value (the default, or `current` RunConfig's) and help, for --help;
    `strategy_settings` lists the chosen strategy's own settings (the resolver supplies them)."""
    lines = []
    for section, cls in SECTIONS.items():
        lines.append(f"{section}:")
        lines += describe(cls, current=getattr(current, section, None) if current is not None else None)
        if section == "pruning" and strategy_settings:
            lines += strategy_settings
    lines.append("run: --seed=0 --runs_dir='runs' --force=false (go past the safety limits knowingly)")
    return "\n".join(lines)
