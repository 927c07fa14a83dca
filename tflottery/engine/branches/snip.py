"""SNIP (Lee et al. 2019): connection sensitivity |dL/dw . w| at initialisation, on training batches."""
from __future__ import annotations

from dataclasses import dataclass

from tflottery.config.fields import in_range, setting
from tflottery.engine.branches.scored import ScoredMask, batches, dense_gradients, kernels, plain_model


class Snip(ScoredMask):
    kind = "snip"
    method = "SNIP"
    description = "pruning at initialisation by connection sensitivity |g . w| (Lee et al. 2019)"

    @dataclass
    class Params(ScoredMask.Params):
        batches: int = setting(1, "training batches whose summed gradient scores the weights")

    def check(self) -> None:
        super().check()
        in_range("snip batches", self.params.batches, 1, 1000)

    def scores(self, ctx, level: int, weights: dict, masks: dict) -> dict:
        return snip_scores(plain_model(ctx, weights, masks), list(masks),
                           batches(ctx, self.score_seed(ctx, level), self.params.batches))


def snip_scores(model, names: list, data: list) -> dict:
    """|g . w| per kernel weight, g the loss gradient summed over the batches of `data`: the sensitivity of the
    loss to the weight's connection (dL/dc at c = 1)."""
    weights = {k: v.numpy() for k, v in zip(names, kernels(model, names))}
    return {k: abs(g * weights[k]) for k, g in dense_gradients(model, names, data).items()}
