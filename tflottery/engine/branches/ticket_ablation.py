"""The ticket's own sanity checks (Frankle et al. 2021): its mask shuffled, reinitialised, or inverted."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflottery.config import setting
from tflottery.core.errors import ConfigError
from tflottery.engine.branches.scored import ScoredMask


class TicketAblation(ScoredMask):
    """The ticket's selection at a level (the previous level's survivors ranked by trained magnitude),
    with one ablation: `invert` keeps the smallest of them instead of the largest, `shuffle` permutes
    each layer's ticket mask (random_prune draws the same distribution), `reinit` puts the ticket
    mask on fresh weights (reinit's distribution)."""

    kind = "ticket_ablation"
    method = "ticket"
    description = "the ticket's mask inverted (keep the smallest trained weights), shuffled or reinitialised"

    @dataclass
    class Params:
        ablation: str = setting("invert", "invert, shuffle or reinit")

    def check(self) -> None:
        super().check()
        if self.params.ablation == "none":
            raise ConfigError("ticket_ablation ablation='none' is the ticket itself: use invert, shuffle or reinit.")

    def within(self, ctx, level: int) -> dict:
        return ctx.record(ctx.pruned_from(level)).masks

    def scores(self, ctx, level: int, weights: dict, masks: dict) -> dict:
        trained = ctx.record(ctx.pruned_from(level)).final
        return {k: np.abs(trained[k]) for k in masks}

    def start_weights(self, ctx, level: int) -> dict:
        return ctx.ticket_weights(level)
