"""One copy of an instability analysis (Frankle et al. 2020)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tflottery.config.fields import required, setting
from tflottery.core.errors import ConfigError
from tflottery.engine.branches.base import Branch, BranchStart


class Copy(Branch):
    """The level's network at its weights of dense-training step `rewind_step` (under the level's mask),
    trained to the end with its own batch order, and nothing else different. Copies with the same
    `order` see the same batches: a control."""

    kind = "copy"
    description = "a copy trained from a rewind point with its own data order (instability analysis)"
    needs_trained_ticket = True

    @dataclass
    class Params:
        rewind_step: int = required("the dense-run step the copy starts from")
        copy: int = required("which copy")
        order: Optional[int] = setting(None, "its batch order (default: its own)")

    def check(self) -> None:
        if self.params.rewind_step < 0 or self.params.copy < 0:
            raise ConfigError(f"copy rewind_step={self.params.rewind_step} and copy={self.params.copy} must be >= 0.")
        if self.params.order is None:
            self.params.order = self.params.copy

    def applies(self, level: int) -> bool:
        return True

    def seed(self, ctx, level: int, purpose: str) -> int:
        p = self.params
        return ctx.seed(level, f"copy@{p.rewind_step}#{p.order}", purpose)

    def start(self, ctx, level: int) -> BranchStart:
        step = self.params.rewind_step
        if level == 0:
            return BranchStart(ctx.all_ones(), ctx.dense_weights(step), step, ctx.end_step)
        if step != ctx.rewind_step:
            raise ConfigError(f"Level {level}'s subnetwork was found by IMP rewinding to step {ctx.rewind_step}; its "
                              f"instability at step {step} belongs to IMP rewinding there (Frankle et al. "
                              f"2020): run `tflottery find --rewind={step}it` and analyse that run, or "
                              "analyse level 0 (the dense network) at any captured step.")
        record = ctx.record(level)
        return BranchStart(record.masks, record.start, step, ctx.end_step)
