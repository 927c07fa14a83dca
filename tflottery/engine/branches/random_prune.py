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
        return ctx.strategy.structure.shuffled(ticket, seed)
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
        steps_multiplier: int = setting(1, "train this many times the ticket's steps (Evci et al.'s static "
                                           "baseline at 2x, 5x budgets)")

    def check(self) -> None:
        check_density(self.kind, self.params.density)
        check_multiplier(self.kind, self.params.steps_multiplier)

    def start(self, ctx, level: int) -> BranchStart:
        masks = random_mask(ctx, level, self.params.density, self.seed(ctx, level, "mask"))
        end, training = budget(ctx, self.params.steps_multiplier)
        return BranchStart(masks, ctx.rewind_weights(), ctx.rewind_step, end, training=training)


def check_multiplier(kind: str, multiplier: int) -> None:
    if isinstance(multiplier, bool) or not isinstance(multiplier, int) or not 1 <= multiplier <= 10:
        raise ConfigError(f"{kind} steps_multiplier={multiplier!r} must lie in [1, 10] (Evci et al.: 2 or 5).")


def budget(ctx, multiplier: int) -> tuple:
    """(end step, training or None) of a unit trained `multiplier` times the ticket's steps, its schedule
    stretched alike (`stretched`); the ticket's own for 1."""
    if multiplier == 1:
        return ctx.end_step, None
    return ctx.end_step * multiplier, stretched(ctx.config.training, multiplier, ctx.data.steps_per_epoch)


def stretched(training, factor: int, steps_per_epoch: int):
    """`training` for `factor` times its steps with its schedule stretched alike (Evci et al.'s 2x and 5x budgets:
    the learning-rate milestones and warm-up at `factor` times their steps; mask updates follow the steps)."""
    import dataclasses

    from tflottery.core.steps import Step

    def scaled(text: str) -> str:
        return f"{factor * Step.parse(text).to_steps(steps_per_epoch)}it"

    return dataclasses.replace(training, steps=scaled(training.steps), warmup=scaled(training.warmup),
                               milestones=[scaled(m) for m in training.milestones])
