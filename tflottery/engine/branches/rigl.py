"""RigL (Evci et al. 2020): dynamic sparse training that regrows where the dense gradient is largest."""
from __future__ import annotations

from tflottery.engine.branches.dynamic import DynamicSparse


class Rigl(DynamicSparse):
    """The dense gradient is the loss gradient with respect to every kernel weight, pruned ones included, on
    the batch the unit trains on next (its own data order), at the masked weights."""

    kind = "rigl"
    method = "RigL"
    description = "dynamic sparse training: drop the smallest weights, regrow by dense-gradient magnitude (Evci et al. 2020)"

    def grow_scores(self, rewirer, step: int, weights: dict) -> dict:
        import numpy as np

        from tflottery import models
        from tflottery.engine.branches.scored import dense_gradients, plain_model

        ctx = rewirer.ctx
        model = rewirer.__dict__.get("plain")
        if model is None:  # built once per unit, its weights set at each update
            model = rewirer.plain = plain_model(ctx, weights, rewirer.masks)
        else:
            masks = rewirer.masks
            models.set_weights(model, {k: v * masks[k] if k in masks else v for k, v in weights.items()})
        batch = list(ctx.data.train_pipeline(self.seed(ctx, rewirer.level, "data_order"), step + 1, step))
        return {k: np.abs(g) for k, g in dense_gradients(model, rewirer.names, batch).items()}
