"""Branches: what trains at a level of a run, one registered class per kind.

The ticket itself is a branch (`ticket`), and so are its baselines (`reinit`, `random_prune`)
and its retraining on another task (`transfer`). A branch owns its hyperparameters, and says
which mask it trains, from which weights, from which step, on which data: the level loop
(`tflottery.engine.imp`) trains every branch through the same code and stores it under
`replicate_<r>/level_<L>/<branch key>/`.

Seeds: a branch draws every random choice from `derive_seed(seed, replicate, level, key,
purpose)`, so a branch can be reproduced alone, in any order, in any process.

Adding a branch kind: subclass `Branch`, set `kind` (its name) and `description`, implement
`start` (and `params` if it has hyperparameters), decorate it with `@register`, and add a
test. Kinds with `per_level = True` need no hyperparameters and can be named in
`--branches`; they train at every pruned level of the ticket.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from tflottery.engine.seeds import derive_seed
from tflottery.errors import ConfigError
from tflottery.pruning import masks as mask_lib

BRANCHES: dict[str, type] = {}


def register(cls):
    BRANCHES[cls.kind] = cls
    return cls


def level_branch_kinds() -> list[str]:
    return [k for k, cls in BRANCHES.items() if cls.per_level]


def check_level_branches(names: list) -> None:
    allowed = level_branch_kinds()
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ConfigError(f"plan.branches has {unknown}: per-level branches are {', '.join(allowed)} "
                          "(transfer runs with `tflottery transfer`).")
    if len(set(names)) != len(names):
        raise ConfigError(f"plan.branches={names} names a branch twice.")


@dataclass
class BranchStart:
    """Where a branch begins: its mask, weights, and the steps [start_step, end_step) it trains.

    `data`, `training` and `head_classes` are None for the run's own data, training and model.
    """

    masks: dict
    weights: Any  # dict, or a callable returning one (drawn only if the branch really trains)
    start_step: int
    end_step: int
    data: Any = None
    training: Any = None
    head_classes: Optional[int] = None
    captures: set = field(default_factory=set)
    watch: Any = None  # (every steps, check(step, weights) -> stop?): e.g. the early-bird rule


class Branch:
    kind: ClassVar[str]
    description: ClassVar[str] = ""
    per_level: ClassVar[bool] = False

    def params(self) -> dict:
        """The hyperparameters that define this branch (recorded in branch.json, hashed into its key)."""
        return {}

    def key(self) -> str:
        params = self.params()
        if not params:
            return self.kind
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.kind}-{digest}"

    def applies(self, level: int) -> bool:
        return level >= 1

    def seed(self, ctx, level: int, purpose: str) -> int:
        return derive_seed(ctx.config.seed, ctx.replicate_index, level, self.key(), purpose)

    def start(self, ctx, level: int) -> BranchStart:
        raise NotImplementedError


@register
class Ticket(Branch):
    """The IMP ticket: level 0 trains the dense network; level L prunes level L-1's trained weights
    (level 0's when one-shot) to the plan's counts and rewinds the survivors."""

    kind = "ticket"

    def applies(self, level: int) -> bool:
        return True

    def start(self, ctx, level: int) -> BranchStart:
        if level == 0:
            return BranchStart(ctx.all_ones(), ctx.init, 0, ctx.end_step, captures=ctx.dense_captures(),
                               watch=ctx.dense_watch())
        source = ctx.record(0 if ctx.strategy.from_dense else level - 1)
        masks = ctx.strategy.prune(source.final, source.masks, ctx.plan[level])
        weights = source.final if ctx.config.pruning.lr_rewind else ctx.rewind_weights()
        return BranchStart(masks, weights, ctx.rewind_step, ctx.end_step)


@register
class Reinit(Branch):
    """The ticket's mask with a fresh random initialisation (Frankle & Carbin's control)."""

    kind = "reinit"
    per_level = True
    description = "the same mask, weights drawn afresh from the model's initialisers"

    def start(self, ctx, level: int) -> BranchStart:
        seed = self.seed(ctx, level, "init")
        return BranchStart(ctx.record(level).masks, lambda: ctx.fresh_weights(seed), ctx.rewind_step, ctx.end_step)


@register
class RandomPrune(Branch):
    """A random mask with the ticket's per-layer sparsity, on the rewind weights."""

    kind = "random_prune"
    per_level = True
    description = "a random mask of the same per-layer sparsity, on the rewind weights"

    def start(self, ctx, level: int) -> BranchStart:
        masks = mask_lib.random_like(ctx.record(level).masks, self.seed(ctx, level, "mask"))
        return BranchStart(masks, ctx.rewind_weights(), ctx.rewind_step, ctx.end_step)


@register
class Transfer(Branch):
    """The ticket retrained on other data, labels or optimizer (Morcos et al. 2019).

    It starts from the rewind weights (`init="rewind"`) or from a fresh initialisation of the
    same mask (`init="reinit"`, the control). When the target has another number of classes,
    the output layer is replaced: fresh Glorot weights, pruned by a seeded random mask to the
    ticket's own output-layer sparsity (a magnitude mask cannot be had for untrained weights).
    """

    kind = "transfer"
    description = "retrain the ticket on another task"

    def __init__(self, data: dict, training: dict, init: str = "rewind", seed: int = 0):
        if init not in ("rewind", "reinit"):
            raise ConfigError(f"transfer init={init!r}: use rewind or reinit.")
        self.data, self.training, self.init, self.base_seed = data, training, init, seed

    def params(self) -> dict:
        return {"data": self.data, "training": self.training, "init": self.init, "seed": self.base_seed}

    def seed(self, ctx, level: int, purpose: str) -> int:
        return derive_seed(self.base_seed, ctx.replicate_index, level, self.key(), purpose)

    def applies(self, level: int) -> bool:
        return True

    def start(self, ctx, level: int) -> BranchStart:
        data, training = ctx.target(self.data, self.training)
        record = ctx.record(level)
        masks = dict(record.masks)
        head = ctx.output_kernel()
        classes = data.num_classes if data.num_classes != ctx.data.num_classes else None
        if classes:
            kept = float(masks[head].mean())
            shape = (masks[head].shape[0], classes)
            template = {head: _first_k(shape, int(round(kept * shape[0] * shape[1])))}
            masks[head] = mask_lib.random_like(template, self.seed(ctx, level, "head_mask"))[head]
        if self.init == "reinit":
            seed = self.seed(ctx, level, "init")
            weights = lambda: ctx.fresh_weights(seed, classes)  # noqa: E731
        else:
            weights = dict(record.start)  # the ticket's own starting weights: its rewind.npz
            if classes:
                weights.update(ctx.fresh_head(self.seed(ctx, level, "head"), classes))
        end = ctx.steps_of(training, data)
        return BranchStart(masks, weights, 0, end, data=data, training=training, head_classes=classes)


def _first_k(shape: tuple, k: int):
    import numpy as np

    flat = np.zeros(int(np.prod(shape)), bool)
    flat[:k] = True
    return flat.reshape(shape)


@register
class Copy(Branch):
    """One copy of an instability analysis (Frankle et al. 2020): the level's network at its weights of
    dense-training step `rewind_step` (under the level's mask), trained to the end with its own batch
    order, and nothing else different. Copies with the same `order` see the same batches: a control."""

    kind = "copy"
    description = "a copy trained from a rewind point with its own data order (instability analysis)"

    def __init__(self, rewind_step: int, copy: int, order: Optional[int] = None):
        self.rewind_step, self.copy = int(rewind_step), int(copy)
        self.order = self.copy if order is None else int(order)

    def params(self) -> dict:
        return {"rewind_step": self.rewind_step, "copy": self.copy, "order": self.order}

    def applies(self, level: int) -> bool:
        return True

    def seed(self, ctx, level: int, purpose: str) -> int:
        return derive_seed(ctx.config.seed, ctx.replicate_index, level, f"copy@{self.rewind_step}#{self.order}", purpose)

    def start(self, ctx, level: int) -> BranchStart:
        if level == 0:
            return BranchStart(ctx.all_ones(), ctx.dense_weights(self.rewind_step), self.rewind_step, ctx.end_step)
        if self.rewind_step != ctx.rewind_step:
            raise ConfigError(f"Level {level}'s subnetwork was found by IMP rewinding to step {ctx.rewind_step}; its "
                              f"instability at step {self.rewind_step} belongs to IMP rewinding there (Frankle et al. "
                              f"2020): run `tflottery find --rewind={self.rewind_step}it` and analyse that run, or "
                              "analyse level 0 (the dense network) at any captured step.")
        record = ctx.record(level)
        return BranchStart(record.masks, record.start, self.rewind_step, ctx.end_step)


@register
class Supermask(Branch):
    """A learned supermask (Ramanujan et al. 2020, edge-popup): the weights stay frozen at `init`
    (signed_constant, scaled_kaiming_uniform, or the run's own initialisation) while a score per
    weight trains; each layer keeps as many weights as the level's ticket does. Its record holds
    the learned mask and mask x frozen weights, so it exports as a ticket like any branch."""

    kind = "supermask"
    per_level = True
    description = "a mask learned on frozen random weights (edge-popup), at the level's sparsity"

    def __init__(self, init: str = "signed_constant"):
        from tflottery.engine.supermask import INITS

        if init not in INITS:
            raise ConfigError(f"supermask init={init!r}: use one of {', '.join(INITS)}.")
        self.init = init

    def params(self) -> dict:
        return {} if self.init == "signed_constant" else {"init": self.init}

    def start(self, ctx, level: int) -> BranchStart:
        from tflottery.engine.supermask import frozen_weights

        masks = ctx.record(level).masks
        kept = {k: float(m.mean()) for k, m in masks.items()}
        weights = frozen_weights(ctx.init, list(masks), self.init, kept, self.seed(ctx, level, "init"))
        return BranchStart(masks, weights, 0, ctx.end_step)

    def fit(self, ctx, level: int, start: BranchStart):
        """Train the scores; returns (frozen weights, final weights, learned masks, LevelResult)."""
        from tflottery.engine import supermask as sm
        from tflottery.engine.optim import compile_model, reset_optimizer
        from tflottery.engine.train import train_level
        from tflottery.keras_compat import keras

        if not start.masks:
            raise ConfigError("A supermask needs prunable layers: this model has none.")
        keras.utils.set_random_seed(self.seed(ctx, level, "keras"))  # the scores' initialisation
        model = sm.supermask_model(ctx.base, {k: int(m.sum()) for k, m in start.masks.items()})
        compile_model(model, ctx.config.training, ctx.data.steps_per_epoch)
        sm.set_frozen(model, start.weights)
        reset_optimizer(model, 0)
        frozen = sm.frozen(model)
        result = train_level(model, ctx.data, ctx.config.training, start=0, end=start.end_step,
                             seed=self.seed(ctx, level, "data_order"), callbacks=ctx.callbacks,
                             label=f"r{ctx.replicate_index} level {level} {self.key()}: ")
        masks = sm.learned_masks(model)
        final = sm.frozen(model)
        final = {k: v * masks[k] if k in masks else v for k, v in final.items()}
        return frozen, final, masks, result
