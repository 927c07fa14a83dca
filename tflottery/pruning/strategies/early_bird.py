"""Early-bird tickets (You et al. 2020): layerwise magnitude pruning to one target, drawn during dense training.

The dense level stops once the last `window` masks differ by at most `threshold` (see
`tflottery.pruning.early_bird`); the ticket is pruned from those weights in one shot.

The distance between two masks is by default 1 - Jaccard overlap of their kept sets: 0 for the
same mask, 1 for disjoint ones, at any density. You et al.'s normalised Hamming distance (the
fraction of all weights whose mask differs, `distance="hamming"`) is at most 2p between masks
of density p, so at high sparsity any threshold above 2p accepts masks that share almost
nothing (at 3.6% remaining, 0.1 cannot fail).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from tflottery.config import setting
from tflottery.core.errors import ConfigError, RunError
from tflottery.core.steps import Step
from tflottery.pruning import masks as mask_lib
from tflottery.pruning.strategies.layerwise import Layerwise


class EarlyBirdStrategy(Layerwise):
    name = "early_bird"
    description = "draw the ticket during dense training once its mask stops changing (You et al. 2020)"

    @dataclass
    class Settings(Layerwise.Settings):
        early_bird_window: int = setting(5, "masks compared ...")
        early_bird_threshold: float = setting(0.2, "... each consecutive distance at most this (0.2: You et al.'s "
                                                   "0.1 Hamming at their 50% density; measured in the README) ...")
        early_bird_every: str = setting("1ep", "... drawn this often during dense training")
        early_bird_distance: str = setting("jaccard", "jaccard (1 - overlap of the kept sets) | hamming "
                                                      "(You et al.: the differing fraction of all weights)")
        early_bird_fallback: bool = setting(False, "no draw in the dense training: prune its final weights instead "
                                                   "of stopping with an error")

    @classmethod
    def check_settings(cls, s) -> None:
        super().check_settings(s)
        check_rule(0.5, s.early_bird_window, s.early_bird_threshold, s.early_bird_distance)
        Step.parse(s.early_bird_every, "pruning.early_bird_every")
        if not isinstance(s.early_bird_fallback, bool):
            raise ConfigError(f"pruning.early_bird_fallback={s.early_bird_fallback!r} must be true or false.")

    def identity(self) -> dict:
        s = self.settings
        distance = {} if s.early_bird_distance == "hamming" else {"distance": s.early_bird_distance}  # 0.2: hamming
        return {**super().identity(), "strategy": self.name, "window": s.early_bird_window,
                "threshold": s.early_bird_threshold, "every": s.early_bird_every, **distance}

    @property
    def from_dense(self) -> bool:
        return True

    def dense_watch(self, plan):
        s = self.settings
        tracker = EarlyBirdTracker(self, plan.rows[plan.levels[-1]], s.early_bird_window, s.early_bird_threshold,
                                   s.early_bird_distance)
        return plan.iterations(s.early_bird_every), tracker

    def check_plan(self, target_remaining, dense_steps: int, steps_per_epoch: int) -> None:
        if target_remaining is None:
            raise ConfigError("pruning.strategy=early_bird draws one ticket at a target: give --target_remaining "
                              "(e.g. 0.07), the fraction of weights it keeps.")
        s = self.settings
        every = Step.parse(s.early_bird_every, "pruning.early_bird_every").to_steps(steps_per_epoch)
        checks = dense_steps // max(1, every)
        if checks < s.early_bird_window and not s.early_bird_fallback:
            raise ConfigError(f"early bird: a mask every {s.early_bird_every} ({every} steps) is drawn {checks} times "
                              f"in the dense training of {dense_steps} steps, and the rule needs {s.early_bird_window} "
                              f"(--early_bird_window): it could never draw. Check more often "
                              f"(--early_bird_every={max(1, dense_steps // (2 * s.early_bird_window))}it), train longer "
                              "(--steps), or take the trained dense network's mask with --early_bird_fallback=true.")

    def check_source(self, metrics: dict, where: str) -> None:
        bird = metrics.get("early_bird")
        if bird is None or bird["drawn"] or self.settings.early_bird_fallback:
            return
        s = self.settings
        last = [round(h["distance"], 3) for h in bird["history"] if h["distance"] is not None][1 - s.early_bird_window:]
        raise RunError(f"early bird: {where}'s dense training drew no mask ({len(bird['history'])} checks every "
                       f"{s.early_bird_every}; the last distances {last}, threshold {s.early_bird_threshold}, window "
                       f"{s.early_bird_window}): its masks never settled. Train longer (--steps), check more often "
                       "(--early_bird_every), loosen --early_bird_threshold, or prune the fully trained dense network "
                       "with --early_bird_fallback=true (the run resumes where it stopped).")


def hamming(a: dict, b: dict) -> float:
    """The fraction of all prunable weights whose mask differs between `a` and `b`."""
    differ = sum(int(np.count_nonzero(a[k] != b[k])) for k in a)
    return differ / max(1, sum(a[k].size for k in a))


def jaccard(a: dict, b: dict) -> float:
    """1 - |A and B| / |A or B| over the kept weights of all layers: 0 the same mask, 1 disjoint ones."""
    both = sum(int(np.count_nonzero(a[k] & b[k])) for k in a)
    either = sum(int(np.count_nonzero(a[k] | b[k])) for k in a)
    return 1.0 - both / either if either else 0.0


DISTANCES = {"jaccard": jaccard, "hamming": hamming}


def check_rule(target_remaining, window, threshold, distance: str = "jaccard") -> None:
    for name, value in (("target_remaining", target_remaining), ("threshold", threshold)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ConfigError(f"early bird: {name}={value!r} must be a number.")
    if not 0.0 < target_remaining < 1.0:
        raise ConfigError(f"early bird: target_remaining={target_remaining} must lie in (0, 1): the fraction of "
                          "weights the ticket keeps, e.g. 0.07.")
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ConfigError(f"early bird: window={window!r} must be an integer >= 2: distances need two masks.")
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"early bird: threshold={threshold} must lie in (0, 1]: a distance between masks.")
    if distance not in DISTANCES:
        raise ConfigError(f"early bird: distance={distance!r} is unknown: use {' or '.join(DISTANCES)}.")


class EarlyBirdTracker:
    """The early-bird rule over a sequence of weights: feed `check(step, weights)`, read `drawn`."""

    def __init__(self, strategy, counts: dict, window: int = 5, threshold: float = 0.2, distance: str = "jaccard"):
        self.strategy, self.counts, self.window, self.threshold = strategy, counts, window, threshold
        self.distance = DISTANCES[distance]
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
        distance = self.distance(self.masks[-1], mask) if self.masks else None
        self.history.append({"step": int(step), "distance": distance})
        self.masks = (self.masks + [mask])[-self.window:]
        window = [row["distance"] for row in self.history[-(self.window - 1):]]
        if len(self.masks) == self.window and all(d is not None and d <= self.threshold for d in window):
            self.drawn = {"step": int(step), "masks": mask, "distances": window}
            return True
        return False
