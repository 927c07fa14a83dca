"""A random mask with the ticket's per-layer sparsity, on the rewind weights."""
from __future__ import annotations

from tflottery.engine.branches.base import Branch, BranchStart
from tflottery.pruning import masks as mask_lib


class RandomPrune(Branch):
    kind = "random_prune"
    label = "random pruning (same sparsity)"
    method = "random pruning"
    style = dict(color="C2", marker="^", linestyle=":")
    control = True
    per_level = True
    description = "a random mask of the same per-layer sparsity, on the rewind weights"

    def start(self, ctx, level: int) -> BranchStart:
        masks = mask_lib.random_like(ctx.level_masks(level), self.seed(ctx, level, "mask"))
        return BranchStart(masks, ctx.rewind_weights(), ctx.rewind_step, ctx.end_step)
