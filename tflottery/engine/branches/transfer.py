"""The ticket retrained on other data, labels or optimizer (Morcos et al. 2019)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflottery.config.fields import required, setting
from tflottery.core.errors import ConfigError
from tflottery.core.seeds import derive_seed
from tflottery.engine.branches.base import Branch, BranchStart
from tflottery.pruning import masks as mask_lib


class Transfer(Branch):
    """It starts from the rewind weights (`init="rewind"`) or from a fresh initialisation of the same
    mask (`init="reinit"`, the control). When the target has another number of classes, the output
    layer is replaced: fresh Glorot weights, pruned by a seeded random mask to the ticket's own
    output-layer sparsity (a magnitude mask cannot be had for untrained weights)."""

    kind = "transfer"
    description = "retrain the ticket on another task"
    needs_trained_ticket = True

    @dataclass
    class Params:
        data: dict = required("the target's data config")
        training: dict = required("the target's training config")
        init: str = setting("rewind", "rewind (the ticket) or reinit (the control)")
        seed: int = setting(0, "the transfer's own seed")

    def check(self) -> None:
        if self.params.init not in ("rewind", "reinit"):
            raise ConfigError(f"transfer init={self.params.init!r}: use rewind or reinit.")

    def seed(self, ctx, level: int, purpose: str) -> int:
        return derive_seed(self.params.seed, ctx.replicate_index, level, self.key(), purpose)

    def applies(self, level: int) -> bool:
        return True

    def start(self, ctx, level: int) -> BranchStart:
        data, training = ctx.target(self.params.data, self.params.training)
        record = ctx.record(level)
        masks = dict(record.masks)
        head = ctx.output_kernel()
        classes = data.num_classes if data.num_classes != ctx.data.num_classes else None
        if classes:
            kept = float(masks[head].mean())
            shape = (masks[head].shape[0], classes)
            template = np.zeros(int(np.prod(shape)), bool)
            template[:int(round(kept * template.size))] = True
            masks[head] = mask_lib.random_like({head: template.reshape(shape)}, self.seed(ctx, level, "head_mask"))[head]
        if self.params.init == "reinit":
            seed = self.seed(ctx, level, "init")
            weights = lambda: ctx.fresh_weights(seed, classes)  # noqa: E731
        else:
            weights = dict(record.start)  # the ticket's own starting weights: its rewind.npz
            if classes:
                weights.update(ctx.fresh_head(self.seed(ctx, level, "head"), classes))
        return BranchStart(masks, weights, 0, ctx.steps_of(training, data), data=data, training=training,
                           head_classes=classes)
