"""Early-bird tickets (You et al. 2020, "Drawing Early-Bird Tickets"): draw the mask while dense training runs.

At each check (every epoch by default) the mask that pruning to the target would give is
drawn from the current weights with the project's pruning strategies (the same masks `find`
draws). The last `window` masks are kept; when every distance between consecutive masks in
that window is at most `threshold`, the mask has stopped changing: the early-bird ticket is
drawn and dense training can stop. The distance is 1 - Jaccard overlap of the kept sets by
default, You et al.'s normalised Hamming distance with `distance="hamming"` (see
`tflottery.pruning.strategies.early_bird` for why). (You et al. prune channels by their
batch-norm scales; this is the unstructured magnitude version, the lottery-ticket one.)

`EarlyBirdTracker` holds the rule; `EarlyBirdCallback` is the Keras callback for any plain `model.fit`
of a tf_keras model; the IMP engine uses the tracker for `--strategy=early_bird`.
"""
from __future__ import annotations

from tflottery.core.deprecation import renamed
from tflottery.core.errors import ConfigError, RunError
from tflottery.core.keras_compat import keras
from tflottery.pruning.strategies.early_bird import EarlyBirdTracker, check_rule


def tracker_for(model, target_remaining: float, window: int = 5, threshold: float = 0.2, pruning=None,
                distance: str = "jaccard"):
    """An EarlyBirdTracker for `model`'s prunable layers, pruning as `pruning` (a PruningConfig or dict;
    default layerwise) would, at the fewest of its levels that reach `target_remaining`."""
    from tflottery.config import PruningConfig
    from tflottery.pruning import wrap as wrap_lib
    from tflottery.pruning.resolve import bind

    check_rule(target_remaining, window, threshold, distance)
    config = pruning if isinstance(pruning, PruningConfig) else PruningConfig.from_dict(pruning or {})
    config.validate()
    strategy = bind(config, wrap_lib.prunable_kinds(model, config.prune), wrap_lib.kernel_shapes(model, config.prune),
                    model.name, wrap_lib.uncovered(model, config.prune))
    counts = strategy.plan(strategy.levels_for(target_remaining))[-1]
    return EarlyBirdTracker(strategy, counts, window, threshold, distance)


def _pruning_config(pruning):
    """`pruning` as a PruningConfig, checked now (strategy, settings, structure): not at the first epoch's end."""
    from tflottery.config import PruningConfig
    from tflottery.pruning.resolve import check

    if pruning is not None and not isinstance(pruning, (dict, PruningConfig)):
        raise ConfigError(f"early bird: pruning={pruning!r} must be a dict of pruning settings, e.g. "
                          "{'strategy': 'global', 'rate': 0.2}, or a PruningConfig.")
    config = pruning if isinstance(pruning, PruningConfig) else PruningConfig.from_dict(pruning or {})
    config.validate()
    check(config)
    return config


class EarlyBirdCallback(keras.callbacks.Callback):
    """A Keras callback that draws an early-bird ticket in any `model.fit` of a tf_keras model.

    It only reads weights: every `every` (an epoch, or steps such as "200it") it draws the mask
    pruning to `target_remaining` would give, and stops training when the last `window` masks
    differ consecutively by at most `threshold` (`distance`: "jaccard" or "hamming"). With
    `steps_per_execution` above 1 a check in steps runs at the first batch end at or after each
    multiple of `every` (the step it ran at is recorded). Afterwards `drawn_step`, `drawn_epoch`,
    `masks` (the early-bird mask) and `history` (every check's step and distance) say what
    happened. A fit that ends without a draw raises `RunError` unless `fallback=True`, which
    takes the mask of the final weights (`drawn_step` stays None). `pruning` chooses the strategy
    (default layerwise).
    """

    def __init__(self, target_remaining: float, window: int = 5, threshold: float = 0.2, every: str = "1ep",
                 pruning: "dict | None" = None, stop: bool = True, distance: str = "jaccard", fallback: bool = False):
        super().__init__()
        check_rule(target_remaining, window, threshold, distance)
        from tflottery.core.steps import Step
        from tflottery.core.values import as_literal_true

        self.every = Step.parse(every, "every")
        if self.every.epochs == 0 and self.every.iterations == 0:
            raise ConfigError("early bird: every=0it never checks: give an epoch count or steps, e.g. '1ep'.")
        if self.every.epochs and self.every.iterations:
            raise ConfigError(f"early bird: every={every!r}: give whole epochs ('1ep') or steps ('200it'), not both.")
        self.target_remaining, self.window, self.threshold, self.distance = target_remaining, window, threshold, distance
        self.pruning, self.stop = _pruning_config(pruning), as_literal_true(stop, "stop")
        self.fallback = as_literal_true(fallback, "fallback")
        self.tracker = None
        self.drawn_step = self.drawn_epoch = self.masks = None
        self.steps_per_epoch, self.step, self.next_check = None, 0, 0

    @property
    def history(self) -> list:
        return self.tracker.history if self.tracker else []

    def on_train_begin(self, logs=None):
        self.tracker = tracker_for(self.model, self.target_remaining, self.window, self.threshold, self.pruning,
                                   self.distance)
        self.steps_per_epoch = self.params.get("steps")
        self.step = self._optimizer_step() or 0
        self.next_check = (self.step // self.every.iterations + 1) * self.every.iterations if not self.every.epochs else 0

    def _optimizer_step(self):
        optimizer = self.model.optimizer
        return int(optimizer.iterations.numpy()) if optimizer is not None else None

    def on_train_batch_end(self, batch, logs=None):
        step = self._optimizer_step()
        self.step = step if step is not None else self.step + 1
        if not self.every.epochs and self.step >= self.next_check:  # one batch end may cover several steps
            self.next_check = (self.step // self.every.iterations + 1) * self.every.iterations
            self._check(epoch=None)

    def on_epoch_end(self, epoch, logs=None):
        if self.every.epochs and (epoch + 1) % self.every.epochs == 0:
            self._check(epoch=epoch + 1)

    def on_train_end(self, logs=None):
        if self.masks is not None:
            return
        if not self.fallback:
            last = [round(h["distance"], 3) for h in self.history if h["distance"] is not None][1 - self.window:]
            raise RunError(f"EarlyBird drew no mask in {self.step} steps ({len(self.history)} checks every {self.every}; "
                           f"the last distances {last}, threshold {self.threshold}, window {self.window}): train "
                           "longer, check more often, loosen the threshold, or pass fallback=True to take the mask "
                           "of the final weights.")
        from tflottery.models.weights import get_weights

        self.masks = self.tracker.mask_of(get_weights(self.model))

    def _check(self, epoch) -> None:
        from tflottery.models.weights import get_weights

        if self.tracker.check(self.step, get_weights(self.model)):
            if self.masks is None:
                self.drawn_step, self.drawn_epoch, self.masks = self.step, epoch, self.tracker.drawn["masks"]
            if self.stop:
                self.model.stop_training = True


__getattr__ = renamed(__name__, {"EarlyBird": (__name__, "EarlyBirdCallback")})
