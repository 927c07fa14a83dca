"""The ticket retrained on other data, labels or optimizer (Morcos et al. 2019)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflottery.config.fields import required, setting
from tflottery.core.errors import ConfigError
from tflottery.core.seeds import derive_seed
from tflottery.engine.branches.base import Branch, BranchStart
from tflottery.pruning import masks as mask_lib


HEADS = ("fresh", "fresh_pruned", "reuse", "reuse_mask")


class Transfer(Branch):
    """It starts from the rewind weights (`init="rewind"`) or from a fresh initialisation of the same
    mask (`init="reinit"`, the control).

    The output layer is the target task's own (`head`): by default `fresh`, a new Gaussian Glorot
    output layer, unpruned, as Morcos et al. (2019) transfer tickets: the ticket is its hidden
    layers; the classifier on top belongs to the target task. `fresh_pruned` prunes that new layer
    by a seeded random mask to the ticket's own output-layer sparsity (0.2's choice for another
    class count); `reuse` keeps the ticket's output layer, weights and mask, and `reuse_mask` its
    mask on fresh weights (0.2's choice for an equal class count; both need the same number of
    classes)."""

    kind = "transfer"
    description = "retrain the ticket on another task"
    needs_trained_ticket = True

    @dataclass
    class Params:
        data: dict = required("the target's data config")
        training: dict = required("the target's training config")
        init: str = setting("rewind", "rewind (the ticket) or reinit (the control)")
        seed: int = setting(0, "the transfer's own seed")
        head: str = setting("fresh", "the output layer: fresh (unpruned, Morcos et al.) | fresh_pruned | reuse | "
                                     "reuse_mask")

    def check(self) -> None:
        if self.params.init not in ("rewind", "reinit"):
            raise ConfigError(f"transfer init={self.params.init!r}: use rewind or reinit.")
        if self.params.head not in HEADS:
            raise ConfigError(f"transfer head={self.params.head!r}: use {', '.join(HEADS)}.")

    def param_values(self) -> dict:
        """`head` always: 0.2's transfers (head chosen by class count) keep their own keys, never taken for 0.3's."""
        return {**super().param_values(), "head": self.params.head}

    def seed(self, ctx, level: int, purpose: str) -> int:
        return derive_seed(self.params.seed, ctx.replicate_index, level, self.key(), purpose)

    def applies(self, level: int) -> bool:
        return True

    def start(self, ctx, level: int) -> BranchStart:
        data, training = ctx.target(self.params.data, self.params.training)
        record = ctx.record(level)
        masks = dict(record.masks)
        head, mode = ctx.output_kernel(), self.params.head
        check_head(mode, ctx.data.num_classes, data.num_classes)
        classes = data.num_classes if data.num_classes != ctx.data.num_classes else None
        shape = (masks[head].shape[0], data.num_classes)
        if mode == "fresh":
            masks[head] = np.ones(shape, bool)
        elif mode == "fresh_pruned":
            template = np.zeros(int(np.prod(shape)), bool)
            template[:int(round(float(masks[head].mean()) * template.size))] = True
            masks[head] = mask_lib.random_like({head: template.reshape(shape)}, self.seed(ctx, level, "head_mask"))[head]
        if self.params.init == "reinit":
            seed = self.seed(ctx, level, "init")
            weights = lambda: ctx.fresh_weights(seed, classes)  # noqa: E731
        else:
            weights = dict(record.start)  # the ticket's own starting weights: its rewind.npz
            if mode != "reuse":
                weights.update(ctx.fresh_head(self.seed(ctx, level, "head"), data.num_classes))
        return BranchStart(masks, weights, 0, ctx.steps_of(training, data), data=data, training=training,
                           head_classes=classes, task=(self.params.data, self.params.training))


def check_head(mode: str, source_classes: int, target_classes: int) -> None:
    """`reuse` and `reuse_mask` keep the ticket's output layer: only for a target of as many classes."""
    if mode in ("reuse", "reuse_mask") and source_classes != target_classes:
        raise ConfigError(f"transfer head={mode} keeps the ticket's output layer of {source_classes} classes, but the "
                          f"target has {target_classes}: use head=fresh (the default) or fresh_pruned.")
