"""The IMP ticket itself: level 0 trains the dense network; level L prunes level L-1's trained weights
(level 0's when one-shot) to the plan's counts and rewinds the survivors."""
from __future__ import annotations

from tflottery.engine.branches.base import Branch, BranchStart


class Ticket(Branch):
    kind = "ticket"
    label = "ticket (IMP, rewound)"
    method = "IMP ticket (rewound)"
    style = dict(color="C0", marker="o", linestyle="-")

    def applies(self, level: int) -> bool:
        return True

    def start(self, ctx, level: int) -> BranchStart:
        if level == 0:
            return BranchStart(ctx.all_ones(), ctx.init, 0, ctx.end_step, captures=ctx.dense_captures(),
                               watch=ctx.strategy.dense_watch(ctx.plan))
        return BranchStart(ctx.level_masks(level), ctx.ticket_weights(level), ctx.rewind_step, ctx.end_step)

    def metrics(self, ctx, unit, result) -> dict:
        """The mask with no training (on the initial weights and their signed constants), and at
        level 0 of an early-bird run, the draw."""
        from tflottery.engine.edge_popup import untrained_accuracies

        out = untrained_accuracies(ctx, unit.start.masks)
        watch = unit.start.watch
        if watch is not None:
            tracker = watch[1]
            last = result.history[-1]["step"]
            out["early_bird"] = {"drawn": tracker.drawn is not None, "history": tracker.history,
                                 "drawn_step": tracker.drawn["step"] if tracker.drawn else None,
                                 "dense_steps": last, "dense_steps_saved": unit.start.end_step - last}
        return out
