"""The ticket's mask with a fresh random initialisation (Frankle & Carbin's control)."""
from __future__ import annotations

from tflottery.engine.branches.base import Branch, BranchStart


class Reinit(Branch):
    kind = "reinit"
    label = "reinit (same mask, new init)"
    method = "ticket mask, reinitialised"
    style = dict(color="C3", marker="s", linestyle="--")
    control = True
    per_level = True
    description = "the same mask, weights drawn afresh from the model's initialisers"

    def start(self, ctx, level: int) -> BranchStart:
        seed = self.seed(ctx, level, "init")
        return BranchStart(ctx.level_masks(level), lambda: ctx.fresh_weights(seed), ctx.rewind_step, ctx.end_step)
