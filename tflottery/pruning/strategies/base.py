"""The base of pruning strategies: a strategy owns its settings, its plan, and how it prunes a level.

A strategy bound to one model's prunable kernels turns its settings into a *plan*: the exact
number of surviving weights at every level (per layer for layerwise pruning, in total for
global pruning), known before training. Pruning a level removes survivors of the previous
mask down to the plan's counts, smallest trained magnitude first, in the units of the run's
structure (`tflottery.pruning.structures`). Iterative and one-shot pruning use the same plan:
one-shot prunes level 0's trained weights straight to level L's counts.
"""
from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np

from tflottery.core.errors import ConfigError
from tflottery.core.names import layer_of, selected, target_label

KINDS = ("dense", "conv", "embedding", "recurrent", "attention")  # rate kinds of targets (`pruning.targets`)
GLOBAL = "(global)"  # the key of a global plan row's total over the pruned layers


class PruningStrategy:
    """The pruning rule of a run, bound to one model's prunable layers.

    `kinds` maps each prunable weight ("<layer>/kernel", "mha/query/kernel") to its rate kind (KINDS), in model order
    (the last is the output layer); `shapes` gives its shape. Subclasses declare `name`, a
    `Settings` dataclass (their own settings, checked by `check_settings`), and implement
    `identity`, `next_counts` (the plan) and `select` (masks with a plan row's counts).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Settings: ClassVar[type]
    left_dense: dict = {}  # {layer: what it holds} of layers with weights no rule prunes, left dense by name (bind)

    def __init__(self, settings, kinds: dict, shapes: dict, structure, unpruned: tuple = (), one_shot: bool = False):
        self.settings, self.kinds, self.shapes = settings, dict(kinds), {k: tuple(s) for k, s in shapes.items()}
        self.sizes = {k: int(np.prod(s)) for k, s in self.shapes.items()}
        self.one_shot = bool(one_shot)
        layers = list(dict.fromkeys(layer_of(k) for k in kinds))
        for name in list(unpruned) + list(self.named_layers()):
            if not selected(kinds, [name]):
                raise ConfigError(f"pruning: no prunable layer named {name!r} (nor weight path, nor glob); prunable layers: "
                                  f"{', '.join(layers)}" + (f" (weights: {', '.join(kinds)})" if len(layers) < len(kinds)
                                                            else "") + ".")
        self.exempt = selected(kinds, unpruned)
        self.pruned = [k for k in kinds if k not in self.exempt]
        if not self.pruned:
            raise ConfigError("pruning.unpruned leaves no layer to prune: remove a name from --unpruned.")
        self.structure = structure(self.kinds, self.shapes, self.pruned) if callable(structure) else structure

    # ------------------------------------------------------------------ settings
    @classmethod
    def check_settings(cls, settings) -> None:
        """Ranges of the settings, before any model is seen."""

    def named_layers(self) -> list:
        """Layer names the settings refer to (checked against the model)."""
        return []

    def identity(self) -> dict:
        """What of this rule defines a run (resolved: explicit defaults and implicit ones hash alike)."""
        raise NotImplementedError

    def run_identity(self) -> dict:
        return self.structure.identify(self.identity(), self.name)

    @property
    def from_dense(self) -> bool:
        """Whether every pruned level is pruned from the dense network's trained weights (one-shot)."""
        return self.one_shot

    def dense_watch(self, plan) -> Optional[tuple]:
        """(every steps, tracker) when the dense level stops at a rule of this strategy (early-bird), else None."""
        return None

    def check_plan(self, target_remaining: Optional[float], dense_steps: int, steps_per_epoch: int) -> None:
        """Refuse, before any work, a run this rule cannot carry out (its plan's target and training length)."""

    def check_source(self, metrics: dict, where: str) -> None:
        """Refuse to prune from a trained level (`metrics`, named `where`) that lacks what this rule needs."""

    # ------------------------------------------------------------------ plan
    def initial_row(self) -> dict:
        """Level 0's plan row: every weight survives."""
        return dict(self.sizes)

    def next_counts(self, counts: dict) -> dict:
        """Survivor counts of the next level from this level's (uncapped) counts."""
        raise NotImplementedError

    def capped(self, row: dict) -> dict:
        """A plan row within what the structure allows at a pruned level."""
        return row

    def plan(self, levels: int) -> list[dict]:
        """Survivor counts for levels 0..levels; exact, known before training."""
        rows, row = [self.initial_row()], self.initial_row()
        for _ in range(levels):
            row = self.next_counts(row)
            rows.append(self.capped(row))
        return rows

    def levels_for(self, target: float, limit: int = 200) -> int:
        """The fewest levels after which at most `target` of the prunable weights remain."""
        full, row = sum(self.sizes.values()), self.initial_row()
        for level in range(1, limit + 1):
            row = self.next_counts(row)
            if total(self.capped(row)) <= target * full:
                return level
        raise ConfigError(f"plan.target_remaining={target} is not reached in {limit} levels at these rates: "
                          "raise the rates or the target.")

    def prune(self, weights: dict, masks: dict, counts: dict) -> dict:
        """Masks inside `masks` with the surviving counts of a plan row, by trained magnitude, in the
        structure's units, each satisfying the structure."""
        constrained = {k: (self.structure.constrain(k, weights[k], m) if k in self.pruned else m.copy())
                       for k, m in masks.items()}
        return self.structure.follow(self.select(weights, constrained, counts))

    def select(self, weights: dict, masks: dict, counts: dict) -> dict:
        raise NotImplementedError

    def table_counts(self, row: dict) -> dict:
        """A plan row as the dry run shows it: per-layer counts, None where only the total is planned."""
        return dict(row)


def total(row: dict) -> int:
    return int(sum(row.values()))


def in_units(count: int, unit: int, rate: float) -> int:
    """`count` weights less `rate` of them, in whole units of `unit` weights."""
    units = count // unit
    return (units - int(round(rate * units))) * unit


def check_rate(name: str, value: float) -> None:
    if value is not None and not 0.0 <= value < 1.0:
        raise ConfigError(f"pruning.{name}={value!r} must lie in [0, 1): the fraction of surviving weights removed "
                          "per level.")


def describe(strategy: PruningStrategy, plan: list, trained: Optional[list] = None) -> str:
    """The dry-run table: surviving weights per layer and level, total and fraction remaining."""
    names = list(strategy.sizes)
    full = sum(strategy.sizes.values())
    head = f"{'level':>5} " + " ".join(f"{target_label(n):>10}" for n in names) + f" {'total':>10} {'remaining':>9}"
    lines = [head]
    for level, row in enumerate(plan):
        if trained is not None and level not in trained:
            continue
        cells = strategy.table_counts(row)
        text = " ".join(f"{cells[n]:>10}" if cells[n] is not None else f"{'(global)':>10}" for n in names)
        lines.append(f"{level:>5} {text} {total(row):>10} {100 * total(row) / full:>8.1f}%")
    if strategy.from_dense:
        lines.append("one-shot: each level is pruned from the dense network's trained weights to these counts")
    note = strategy.structure.note()
    if note:
        lines.append(note)
    if strategy.structure.kernel_warning:
        lines.append(f"warning: {strategy.structure.kernel_warning}")
    return "\n".join(lines)
