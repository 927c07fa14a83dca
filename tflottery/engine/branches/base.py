"""The base of branches: what trains at a level of a run, its typed parameters, and its hooks.

A branch kind declares `kind`, a `Params` dataclass (its hyperparameters: they name its folder
`kind-<hash>` and are recorded in `branch.json`; defaults are left out, so a branch at its
defaults keeps the plain name) and hooks the level loop calls:

* `start(ctx, level)`: its mask, weights and steps (a `BranchStart`);
* `train(ctx, unit)`: None to let the trainer train it (alone or in a population group), or the
  result of its own training (a supermask trains scores on frozen weights);
* `metrics(ctx, unit, result)`: numbers it adds to its level's metrics.

Seeds: a branch draws every random choice from `ctx.seed(level, key, purpose)` (`derive_seed` of the
run's seed, the replicate, level, key and purpose), so it can be reproduced alone, in any order, in any
process, in any group.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from tflottery.config import build


@dataclass
class BranchStart:
    """Where a branch begins: its mask, weights, and the steps [start_step, end_step) it trains.

    `data` and `training` are None for the run's own data and training; `head_classes` for the
    run's own output layer.
    """

    masks: dict
    weights: Any  # dict, or a callable returning one (drawn only if the branch really trains)
    start_step: int
    end_step: int
    data: Any = None
    training: Any = None
    head_classes: Optional[int] = None
    captures: set = field(default_factory=set)
    watch: Any = None  # (every steps, tracker with .check(step, weights) -> stop?): e.g. the early-bird rule
    rewire: Any = None  # (steps, rewirer with .update(step, model)): dynamic sparse training changes the mask
    task: Optional[tuple] = None  # (data, training) configs, as plain data, that `data` and `training` were loaded from


class Branch:
    kind: ClassVar[str]
    description: ClassVar[str] = ""
    per_level: ClassVar[bool] = False  # a baseline at every pruned level, nameable in plan.branches
    needs_trained_ticket: ClassVar[bool] = False  # starts only once the ticket of its level has trained
    label: ClassVar[str] = ""  # how figures' legends name it (default: its kind)
    method: ClassVar[str] = ""  # how tables of methods name it (default: its label)
    style: ClassVar[dict] = {}  # its matplotlib line in figures (color, marker, linestyle)
    control: ClassVar[bool] = False  # one of the controls a ticket must beat to be called one (the verdict's)

    @dataclass
    class Params:
        pass

    def __init__(self, params: Any = None, **values):
        self.params = params if isinstance(params, self.Params) else build(self.Params, {**(params or {}), **values},
                                                                           f"branch {self.kind}")
        self.check()

    def check(self) -> None:
        """Refuse parameters that cannot be right (a ConfigError naming the parameter)."""

    def param_values(self) -> dict:
        """The parameters that differ from their defaults (recorded in branch.json, hashed into the key)."""
        out = {}
        for f in dataclasses.fields(self.params):
            value = getattr(self.params, f.name)
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
            if value != default:
                out[f.name] = value
        return json.loads(json.dumps(out))

    def key(self) -> str:
        params = self.param_values()
        if not params:
            return self.kind
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.kind}-{digest}"

    def applies(self, level: int) -> bool:
        return level >= 1

    def seed(self, ctx, level: int, purpose: str) -> int:
        return ctx.seed(level, self.key(), purpose)

    def start(self, ctx, level: int) -> BranchStart:
        raise NotImplementedError

    def train(self, ctx, unit) -> Any:
        """None: the trainer trains this branch. A branch with its own training returns its UnitResult."""
        return None

    def metrics(self, ctx, unit, result) -> dict:
        return {}

    @classmethod
    def legend(cls) -> str:
        return cls.label or cls.kind

    @classmethod
    def table_name(cls) -> str:
        return cls.method or cls.legend()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.param_values()})"
