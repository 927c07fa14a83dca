"""The base of dynamic sparse training: a sparse network whose connections move while it trains.

The branch starts from a random mask with the level's total (per layer: the ticket's counts, uniform or
ERK: `density`) on the rewind weights and
trains for the ticket's steps (x `steps_multiplier`, RigL's longer budgets stretch the schedule).
Every `delta_t` steps until `end_fraction` of training, each layer drops the fraction
`drop_fraction / 2 x (1 + cos(pi t / t_end))` of its active weights with the smallest magnitude and
regrows as many among its inactive ones (the just-dropped included) by the kind's `grow_scores`
(SET: at random; RigL: the largest dense-gradient magnitude); regrown weights start at zero, so a
layer's count never changes and pruned weights are exactly zero after every step. Defaults are
Evci et al. 2020's (100 steps, 0.3, 75%).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tflottery.config import setting
from tflottery.core.errors import ConfigError
from tflottery.engine.branches.base import Branch, BranchStart
from tflottery.engine.branches.random_prune import budget, check_density, check_multiplier, random_mask
from tflottery.pruning import masks as mask_lib


def rewire_layer(weights: np.ndarray, mask: np.ndarray, fraction: float, grow: np.ndarray) -> tuple:
    """(mask, weights, kept) of one layer after one update: the `fraction` of its active weights of smallest
    magnitude dropped, as many inactive ones (after the drop, so the just-dropped too) with the largest
    `grow` scores regrown at zero; `kept`: the weights that were neither dropped nor regrown."""
    active = int(mask.sum())
    n = min(int(round(fraction * active)), active)
    if n <= 0:
        return mask.copy(), weights.copy(), mask.copy()
    kept = mask_lib.drop_smallest(weights, mask, n)
    inactive = np.flatnonzero(~kept.ravel())
    order = np.argsort(-grow.ravel()[inactive], kind="stable")
    new = kept.ravel().copy()
    new[inactive[order[:n]]] = True
    new = new.reshape(mask.shape)
    return new, np.where(kept, weights, 0).astype(weights.dtype), kept


class Rewirer:
    """Updates one unit's mask during training (`train_group`'s rewire hook)."""

    def __init__(self, branch, ctx, level: int, masks: dict, start: int, end: int):
        p = branch.params
        self.branch, self.ctx, self.level, self.masks = branch, ctx, level, {k: m.copy() for k, m in masks.items()}
        self.start, self.t_end = start, start + int(p.end_fraction * (end - start))
        self.steps = list(range(start + p.delta_t, self.t_end + 1, p.delta_t))
        self.history: list = []
        self.names = list(ctx.strategy.pruned)

    def fraction(self, step: int) -> float:
        p = self.branch.params
        return p.drop_fraction / 2 * (1 + math.cos(math.pi * (step - self.start) / max(1, self.t_end - self.start)))

    def update(self, step: int, model) -> None:
        weights = model.get_tower(0)
        grow = self.branch.grow_scores(self, step, weights)
        fraction = self.fraction(step)
        moved, kept = 0, {}
        for k in self.names:
            before = self.masks[k]
            self.masks[k], weights[k], kept[k] = rewire_layer(weights[k], before, fraction, grow[k])
            moved += int((self.masks[k] & ~kept[k]).sum())
        model.keep_slots(0, kept)  # dropped and regrown weights lose their moments: nothing moves a pruned weight
        model.set_tower(0, weights, self.masks)
        self.history.append({"step": step, "fraction": fraction, "regrown": moved,
                             "counts": mask_lib.counts(self.masks)})


class DynamicSparse(Branch):
    per_level = True

    @dataclass
    class Params:
        delta_t: int = setting(100, "steps between mask updates")
        drop_fraction: float = setting(0.3, "fraction of each layer's active weights moved at the first update "
                                            "(cosine-decayed)")
        end_fraction: float = setting(0.75, "updates stop at this fraction of training")
        steps_multiplier: int = setting(1, "train this many times the ticket's steps (RigL's 2x, 5x budgets)")
        density: str = setting("ticket", "per-layer counts: ticket (the ticket's), uniform, erk (Evci et al. 2020)")

    def check(self) -> None:
        p = self.params
        if not 1 <= p.delta_t <= 10 ** 6:
            raise ConfigError(f"{self.kind} delta_t={p.delta_t} must lie in [1, 1e6] steps.")
        if not 0 < p.drop_fraction < 1 or not 0 < p.end_fraction <= 1:
            raise ConfigError(f"{self.kind}: drop_fraction={p.drop_fraction} must lie in (0, 1) and end_fraction="
                              f"{p.end_fraction} in (0, 1].")
        check_multiplier(self.kind, p.steps_multiplier)
        check_density(self.kind, p.density)

    def grow_scores(self, rewirer: Rewirer, step: int, weights: dict) -> dict:
        raise NotImplementedError

    def start(self, ctx, level: int) -> BranchStart:
        masks = random_mask(ctx, level, self.params.density, self.seed(ctx, level, "mask"))
        begin = ctx.rewind_step
        end, training = budget(ctx, self.params.steps_multiplier)
        rewirer = Rewirer(self, ctx, level, masks, begin, end)
        return BranchStart(masks, ctx.rewind_weights(), begin, end, training=training,
                           rewire=(rewirer.steps, rewirer))

    def metrics(self, ctx, unit, result) -> dict:
        history = unit.start.rewire[1].history
        return {"mask_updates": len(history), "regrown": sum(h["regrown"] for h in history),
                "counts_constant": all(h["counts"] == mask_lib.counts(unit.start.masks) for h in history)}
