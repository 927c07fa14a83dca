"""Early-bird tickets (You et al. 2020): layerwise magnitude pruning to one target, drawn during dense training.

The dense level stops once the last `window` masks differ by at most `threshold` (see
`tflottery.pruning.early_bird`); the ticket is pruned from those weights in one shot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from tflottery.config import setting
from tflottery.core.errors import ConfigError
from tflottery.core.steps import Step
from tflottery.pruning import masks as mask_lib
from tflottery.pruning.strategies.layerwise import Layerwise


class EarlyBird(Layerwise):
    name = "early_bird"
    description = "draw the ticket during dense training once its mask stops changing (You et al. 2020)"

    @dataclass
    class Settings(Layerwise.Settings):
        early_bird_window: int = setting(5, "masks compared ...")
        early_bird_threshold: float = setting(0.1, "... each consecutive distance at most this ...")
        early_bird_every: str = setting("1ep", "... drawn this often during dense training")

    @classmethod
    def check_settings(cls, s) -> None:
        super().check_settings(s)
        check_rule(0.5, s.early_bird_window, s.early_bird_threshold)
        Step.parse(s.early_bird_every, "pruning.early_bird_every")

    def identity(self) -> dict:
        s = self.settings
        return {**super().identity(), "strategy": self.name, "window": s.early_bird_window,
                "threshold": s.early_bird_threshold, "every": s.early_bird_every}

    @property
    def from_dense(self) -> bool:
        return True

    def dense_watch(self, plan):
        s = self.settings
        tracker = EarlyBirdTracker(self, plan.rows[plan.levels[-1]], s.early_bird_window, s.early_bird_threshold)
        return plan.iterations(s.early_bird_every), tracker


def hamming(a: dict, b: dict) -> float:
    """The fraction of all prunable weights whose mask differs between `a` and `b`."""
    differ = sum(int(np.count_nonzero(a[k] != b[k])) for k in a)
    return differ / max(1, sum(a[k].size for k in a))


def check_rule(target_remaining, window, threshold) -> None:
    for name, value in (("target_remaining", target_remaining), ("threshold", threshold)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ConfigError(f"early bird: {name}={value!r} must be a number.")
    if not 0.0 < target_remaining < 1.0:
        raise ConfigError(f"early bird: target_remaining={target_remaining} must lie in (0, 1): the fraction of "
                          "weights the ticket keeps, e.g. 0.07.")
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ConfigError(f"early bird: window={window!r} must be an integer >= 2: distances need two masks.")
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"early bird: threshold={threshold} must lie in (0, 1]: a normalised Hamming distance.")


class EarlyBirdTracker:
    """The early-bird rule over a sequence of weights: feed `check(step, weights)`, read `drawn`."""

    def __init__(self, strategy, counts: dict, window: int = 5, threshold: float = 0.1):
        self.strategy, self.counts, self.window, self.threshold = strategy, counts, window, threshold
        self.masks: list = []  # the last `window` masks
        self.history: list = []  # one row per check: step and distance to the previous mask
        self.drawn: Optional[dict] = None  # {"step", "masks", "distances"} once drawn

    def mask_of(self, weights: dict) -> dict:
        """The mask pruning `weights` to the target gives (one-shot, with the strategy's plan counts)."""
        return self.strategy.prune(weights, mask_lib.ones_like(weights, self.strategy.sizes), self.counts)

    def check(self, step: int, weights: dict) -> bool:
        """Draw the mask of `weights`; True when the window's masks have stopped changing (drawn)."""
        if self.drawn is not None:
            return True
        mask = self.mask_of(weights)
        distance = hamming(self.masks[-1], mask) if self.masks else None
        self.history.append({"step": int(step), "distance": distance})
        self.masks = (self.masks + [mask])[-self.window:]
        window = [row["distance"] for row in self.history[-(self.window - 1):]]
        if len(self.masks) == self.window and all(d is not None and d <= self.threshold for d in window):
            self.drawn = {"step": int(step), "masks": mask, "distances": window}
            return True
        return False
