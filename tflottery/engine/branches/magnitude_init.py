"""Magnitude pruning at initialisation: keep the largest |w| of the rewind (initial) weights, untrained."""
from __future__ import annotations

import numpy as np

from tflottery.engine.branches.scored import ScoredMask


class MagnitudeInit(ScoredMask):
    kind = "magnitude_init"
    method = "magnitude at init"
    description = "pruning at initialisation: the largest initial weights by magnitude, at the level's counts"

    def scores(self, ctx, level: int, weights: dict, masks: dict) -> dict:
        return {k: np.abs(weights[k]) * masks[k] for k in masks}
