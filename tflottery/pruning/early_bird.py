"""Early-bird tickets (You et al. 2020, "Drawing Early-Bird Tickets"): draw the mask while dense training runs.

At each check (every epoch by default) the mask that pruning to the target would give is
drawn from the current weights with the project's pruning strategies (the same masks `find`
draws). The last `window` masks are kept; when every normalised Hamming distance between
consecutive masks in that window is at most `threshold`, the mask has stopped changing: the
early-bird ticket is drawn and dense training can stop. (You et al. prune channels by their
batch-norm scales; this is the unstructured magnitude version, the lottery-ticket one.)

`EarlyBirdTracker` holds the rule; `EarlyBird` is the Keras callback for any plain `model.fit`
of a tf_keras model; the IMP engine uses the tracker for `--strategy=early_bird`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from tflottery.errors import ConfigError
from tflottery.keras_compat import keras
from tflottery.pruning import masks as mask_lib


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


def tracker_for(model, target_remaining: float, window: int = 5, threshold: float = 0.1, pruning=None):
    """An EarlyBirdTracker for `model`'s prunable layers, pruning as `pruning` (a PruningConfig or dict;
    default layerwise) would, at the fewest of its levels that reach `target_remaining`."""
    from tflottery.config import PruningConfig, build
    from tflottery.pruning import wrap as wrap_lib
    from tflottery.pruning.strategies import build_strategy, layer_shapes, layer_sizes

    check_rule(target_remaining, window, threshold)
    config = pruning if isinstance(pruning, PruningConfig) else build(PruningConfig, pruning or {}, "pruning")
    config.validate()
    kinds = wrap_lib.prunable_kinds(model)
    if not kinds:
        raise ConfigError(f"Model {model.name!r} has no Dense or Conv layer to prune.")
    weights = wrap_lib.get_weights(model)
    strategy = build_strategy(config, kinds, layer_sizes(weights, kinds), layer_shapes(weights, kinds))
    counts = strategy.plan(strategy.levels_for(target_remaining))[-1]
    return EarlyBirdTracker(strategy, counts, window, threshold)


class EarlyBird(keras.callbacks.Callback):
    """A Keras callback that draws an early-bird ticket in any `model.fit` of a tf_keras model.

    It only reads weights: every `every` (an epoch, or steps such as "200it") it draws the mask
    pruning to `target_remaining` would give, and stops training when the last `window` masks
    differ pairwise (consecutively) by at most `threshold` (normalised Hamming distance).
    Afterwards `drawn_step`, `drawn_epoch`, `masks` (the early-bird mask) and `history` (every
    check's distance) say what happened. `pruning` chooses the strategy (default layerwise).
    """

    def __init__(self, target_remaining: float, window: int = 5, threshold: float = 0.1, every: str = "1ep",
                 pruning: "dict | None" = None, stop: bool = True):
        super().__init__()
        check_rule(target_remaining, window, threshold)
        from tflottery.config import Step

        self.every = Step.parse(every, "every")
        if self.every.epochs == 0 and self.every.iterations == 0:
            raise ConfigError("early bird: every=0it never checks: give an epoch count or steps, e.g. '1ep'.")
        self.target_remaining, self.window, self.threshold = target_remaining, window, threshold
        self.pruning, self.stop = pruning, stop
        self.tracker = None
        self.drawn_step = self.drawn_epoch = self.masks = None
        self.steps_per_epoch, self.step = None, 0

    @property
    def history(self) -> list:
        return self.tracker.history if self.tracker else []

    def on_train_begin(self, logs=None):
        self.tracker = tracker_for(self.model, self.target_remaining, self.window, self.threshold, self.pruning)
        self.steps_per_epoch = self.params.get("steps")
        self.step = 0

    def on_train_batch_end(self, batch, logs=None):
        self.step = int(self.model.optimizer.iterations.numpy()) if self.model.optimizer is not None else self.step + 1
        if self.every.epochs == 0 and self.step % self.every.iterations == 0:
            self._check(epoch=None)

    def on_epoch_end(self, epoch, logs=None):
        if self.every.epochs and (epoch + 1) % self.every.epochs == 0:
            self._check(epoch=epoch + 1)

    def _check(self, epoch) -> None:
        from tflottery.pruning.wrap import get_weights

        if self.tracker.check(self.step, get_weights(self.model)):
            if self.masks is None:
                self.drawn_step, self.drawn_epoch, self.masks = self.step, epoch, self.tracker.drawn["masks"]
            if self.stop:
                self.model.stop_training = True
