"""Names to registered kinds, validated: the one resolver between plain config and the engine.

TensorFlow-free, so the CLI checks every flag (the strategy's settings, the structure, each
branch and its parameters) before TensorFlow loads. `resolve(config)` returns the kinds a
run uses; `check(config)` only validates.
"""
from __future__ import annotations

from dataclasses import dataclass

from tflottery.config import RunConfig
from tflottery.core.errors import ConfigError
from tflottery.data.sources import check_source
from tflottery.engine.branches import BRANCHES, Branch, level_branch_kinds
from tflottery.pruning import resolve as pruning_resolve


@dataclass
class Resolved:
    branches: list  # Branch instances, the ticket first


def branch(entry) -> Branch:
    """A per-level branch from its plan entry: "name" or {"name": {params}}."""
    name, params = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
    allowed = level_branch_kinds()
    if name not in allowed:
        raise ConfigError(f"plan.branches has {name!r}: per-level branches are {', '.join(allowed)} "
                          "(transfer runs with `tflottery transfer`, copies with `tflottery instability`).")
    if not isinstance(params, dict):
        raise ConfigError(f"plan.branches: the parameters of {name!r} must be a mapping, e.g. "
                          f"{{\"{name}\": {{...}}}}; got {params!r}.")
    return BRANCHES[name](params)


def resolve(config: RunConfig) -> Resolved:
    """Every kind `config` names, checked; the branches built (the ticket first)."""
    pruning_resolve.check(config.pruning)
    check_source(config.data.source)
    branches = [BRANCHES["ticket"]()] + [branch(entry) for entry in config.plan.branches]
    keys = [b.key() for b in branches]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"plan.branches={config.plan.branches} names a branch twice.")
    return Resolved(branches)


def check(config: RunConfig) -> None:
    resolve(config)


def settings_help(flags: dict, given: "dict | None" = None) -> list[str]:
    """The --help lines of the strategy the flags choose (its settings with the `given` values, and the
    structures)."""
    return pruning_resolve.settings_help(str(flags.get("strategy", flags.get("pruning.strategy", "layerwise"))),
                                         given)
