"""SET (Mocanu et al. 2018): dynamic sparse training that regrows connections at random."""
from __future__ import annotations

import numpy as np

from tflottery.engine.branches.dynamic import DynamicSparse


class Set(DynamicSparse):
    kind = "set"
    method = "SET"
    description = "dynamic sparse training: drop the smallest weights, regrow at random (Mocanu et al. 2018)"

    def grow_scores(self, rewirer, step: int, weights: dict) -> dict:
        rng = np.random.default_rng(self.seed(rewirer.ctx, rewirer.level, f"grow_{step}"))
        return {k: rng.random(weights[k].shape) for k in rewirer.names}
