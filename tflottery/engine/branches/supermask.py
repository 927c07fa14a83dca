"""A learned supermask (Ramanujan et al. 2020, edge-popup) on frozen random weights."""
from __future__ import annotations

from dataclasses import dataclass

from tflottery.config import setting
from tflottery.core.errors import ConfigError
from tflottery.engine.branches.base import Branch, BranchStart

INITS = ("signed_constant", "scaled_kaiming_uniform", "init")


class Supermask(Branch):
    """The weights stay frozen at `init` (signed_constant, scaled_kaiming_uniform, or the run's own
    initialisation) while a score per weight trains; each layer keeps as many weights as the level's
    ticket does. Its record holds the learned mask and mask x frozen weights, so it exports as a
    ticket like any branch. It trains its own model (scores, not weights): about 6x a ticket level."""

    kind = "supermask"
    label = "supermask (learned on frozen weights)"
    method = "supermask"
    style = dict(color="C4", marker="D", linestyle="-.")
    per_level = True
    description = "a mask learned on frozen random weights (edge-popup), at the level's sparsity"

    @dataclass
    class Params:
        init: str = setting("signed_constant", "the frozen weights: " + ", ".join(INITS))

    def check(self) -> None:
        if self.params.init not in INITS:
            raise ConfigError(f"supermask init={self.params.init!r}: use one of {', '.join(INITS)}.")

    def start(self, ctx, level: int) -> BranchStart:
        from tflottery.engine.edge_popup import frozen_weights

        masks = ctx.level_masks(level)
        kept = {k: float(m.mean()) for k, m in masks.items()}
        weights = frozen_weights(ctx.init, list(masks), self.params.init, kept, self.seed(ctx, level, "init"))
        return BranchStart(masks, weights, 0, ctx.end_step)

    def train(self, ctx, unit):
        from tflottery.engine.edge_popup import train_supermask

        return train_supermask(ctx, unit, self.seed(ctx, unit.level, "keras"))
