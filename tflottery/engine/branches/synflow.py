"""SynFlow (Tanaka et al. 2020): iterative, data-free pruning by synaptic flow on the absolute network."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflottery.config.fields import in_range, setting
from tflottery.engine.branches.scored import ScoredMask, kernels, plain_model


class Synflow(ScoredMask):
    """Each of `rounds` rounds scores |dR/dw . w| with R = sum of the outputs of the network with every
    parameter replaced by its absolute value on an all-ones input (in float64), and prunes towards the
    level's counts on an exponential schedule: round i keeps size x (count / size)^(i / rounds)."""

    kind = "synflow"
    method = "SynFlow"
    _model = None
    description = "iterative data-free pruning at initialisation by synaptic flow (Tanaka et al. 2020)"

    @dataclass
    class Params(ScoredMask.Params):
        rounds: int = setting(100, "pruning rounds to the level's counts (exponential schedule)")

    def check(self) -> None:
        super().check()
        in_range("synflow rounds", self.params.rounds, 1, 1000)

    def scores(self, ctx, level: int, weights: dict, masks: dict) -> dict:
        from tflottery import models

        model = self._model or plain_model(ctx, weights, masks, "float64")
        models.set_weights(model, {k: (np.abs(v) * masks[k] if k in masks else np.abs(v)).astype(np.float64)
                                   for k, v in weights.items()})
        return synflow_scores(model, list(masks))

    def level_mask(self, ctx, level: int, weights: dict) -> dict:
        full, target = ctx.strategy.initial_row(), ctx.plan.rows[level]
        masks = self.within(ctx, level)
        rounds = self.params.rounds
        self._model = plain_model(ctx, weights, masks, "float64")  # built once, its weights set each round
        try:
            for i in range(1, rounds + 1):
                row = target if i == rounds else {k: int(round(full[k] * (target[k] / full[k]) ** (i / rounds)))
                                                  for k in target}
                masks = self.select(ctx, level, weights, masks, row)
        finally:
            self._model = None
        return masks


def synflow_scores(model, names: list) -> dict:
    """|dR/dw . w| per kernel weight, R = sum(f(1)) of `model` with all its parameters made absolute."""
    import tensorflow as tf

    for v in model.trainable_variables:
        v.assign(tf.abs(v))
    ones = tf.ones((1, *model.input_shape[1:]), model.inputs[0].dtype)
    variables = kernels(model, names)
    with tf.GradientTape() as tape:
        r = tf.reduce_sum(model(ones, training=False))
    return {k: np.abs((g * v).numpy()) for k, g, v in zip(names, tape.gradient(r, variables), variables)}
