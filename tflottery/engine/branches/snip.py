"""SNIP (Lee et al. 2019): connection sensitivity |dL/dw . w| at initialisation, on training batches."""
from __future__ import annotations

from dataclasses import dataclass

from tflottery.config.fields import in_range, setting
from tflottery.engine.branches.scored import ScoredMask, dense_gradients, kernels, plain_model, score_data


class Snip(ScoredMask):
    kind = "snip"
    method = "SNIP"
    description = "pruning at initialisation by connection sensitivity |g . w| (Lee et al. 2019)"

    @dataclass
    class Params(ScoredMask.Params):
        batches: int = setting(1, "training batches whose summed gradient scores the weights (Lee et al.: one)")
        samples_per_class: int = setting(0, "score from this many examples of each class instead (GraSP's code "
                                            "scores SNIP from 10 per class); 0: `batches` training batches")

    def check(self) -> None:
        super().check()
        in_range("snip batches", self.params.batches, 1, 1000)
        in_range("snip samples_per_class", self.params.samples_per_class, 0, 10000)

    def scores(self, ctx, level: int, weights: dict, masks: dict) -> dict:
        return snip_scores(plain_model(ctx, weights, masks), list(masks), score_data(self, ctx, level))


def snip_scores(model, names: list, data: list) -> dict:
    """|g . w| per kernel weight, g the loss gradient summed over the batches of `data`: the sensitivity of the
    loss to the weight's connection (dL/dc at c = 1)."""
    weights = {k: v.numpy() for k, v in zip(names, kernels(model, names))}
    return {k: abs(g * weights[k]) for k, g in dense_gradients(model, names, data).items()}
