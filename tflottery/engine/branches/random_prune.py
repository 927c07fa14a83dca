"""A random mask with the ticket's per-layer sparsity (or another density: uniform, ERK), on the rewind weights."""
from __future__ import annotations

from dataclasses import dataclass

from tflottery.config import setting
from tflottery.core.errors import ConfigError
from tflottery.engine.branches.base import Branch, BranchStart
from tflottery.pruning import masks as mask_lib
from tflottery.pruning.density import DENSITIES, layer_counts


def random_mask(ctx, level: int, density: str, seed: int) -> dict:
    """A random mask with as many survivors as the level's ticket: per layer the ticket's counts (`ticket`), or
    `uniform` or `erk` counts over the pruned layers (`tflottery.pruning.density`; unpruned layers stay whole)."""
    ticket = ctx.level_masks(level)
    if density == "ticket":
        return mask_lib.random_like(ticket, seed)
    pruned = [k for k in ctx.strategy.sizes if k in ctx.strategy.pruned]
    shapes = {k: ticket[k].shape for k in pruned}
    counts = layer_counts(density, shapes, sum(int(ticket[k].sum()) for k in pruned))
    return {**{k: m.copy() for k, m in ticket.items() if k not in shapes},
            **mask_lib.random_counts(shapes, counts, seed)}


def check_density(kind: str, density: str) -> None:
    if density not in DENSITIES:
        raise ConfigError(f"{kind} density={density!r}: use one of {', '.join(DENSITIES)} (per-layer counts: the "
                          "ticket's, one density for every layer, or Erdős–Rényi-Kernel).")


class RandomPrune(Branch):
    kind = "random_prune"
    label = "random pruning (same sparsity)"
    method = "random pruning"
    style = dict(color="C2", marker="^", linestyle=":")
    control = True
    per_level = True
    description = "a random mask of the same sparsity (the ticket's per-layer counts, or uniform or ERK), on the rewind weights"

    @dataclass
    class Params:
        density: str = setting("ticket", "per-layer counts: ticket (the ticket's), uniform, erk (Evci et al. 2020)")

    def check(self) -> None:
        check_density(self.kind, self.params.density)

    def start(self, ctx, level: int) -> BranchStart:
        masks = random_mask(ctx, level, self.params.density, self.seed(ctx, level, "mask"))
        return BranchStart(masks, ctx.rewind_weights(), ctx.rewind_step, ctx.end_step)
