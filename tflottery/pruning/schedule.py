"""Our tfmot `PruningSchedule`: iterative magnitude pruning at level boundaries.

`IMPSchedule(rate, level_steps, levels)` tells tfmot's `PruneLowMagnitude` wrapper to prune at
the end of every level: at training step L * level_steps + 1 (tfmot counts steps from 1) for
L = 1..levels it answers "prune, to sparsity 1 - kept[L]". tfmot then keeps each kernel's
round(size x kept[L]) weights of largest magnitude; when pruned weights are exactly zero (the
`Rewind` callback keeps them so), those are the largest survivors: the mask layerwise IMP draws.

`kept` defaults to (1 - rate)^L; `tflottery.prune_imp` gives each layer the exact survivor fractions of
the project's layerwise plan (Frankle & Carbin's rounding, the output layer at half rate), so
its masks are the ones `tflottery find` would draw from the same weights.

With `levels=0` the schedule never prunes: the frozen-mask wrappers of `find` use it that way.
"""
from __future__ import annotations

import math
from typing import Optional

import tensorflow as tf
import tensorflow_model_optimization as tfmot

from tflottery.core.errors import ConfigError
from tflottery.core.keras_compat import keras


@keras.saving.register_keras_serializable(package="tflottery")
class IMPSchedule(tfmot.sparsity.keras.PruningSchedule):
    """Prune `rate` of the survivors at the end of every `level_steps` steps, `levels` times."""

    def __init__(self, rate: float = 0.2, level_steps: int = 1, levels: int = 0, kept: Optional[list] = None):
        for name, value in (("rate", rate),):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0.0 <= value < 1.0:
                raise ConfigError(f"IMPSchedule {name}={value!r} must lie in [0, 1): the fraction of surviving "
                                  "weights removed per level.")
        for name, value, low in (("level_steps", level_steps, 1), ("levels", levels, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"IMPSchedule {name}={value!r} must be an integer >= {low}.")
        if kept is not None and (not isinstance(kept, (list, tuple)) or len(kept) != levels + 1 or any(
                isinstance(k, bool) or not isinstance(k, (int, float)) or not 0.0 <= k <= 1.0 for k in kept)):
            raise ConfigError(f"IMPSchedule kept={kept!r} must give the fraction kept at each of levels 0..{levels}.")
        self.rate, self.level_steps, self.levels = float(rate), int(level_steps), int(levels)
        self.kept = [float(k) for k in kept] if kept is not None else [(1.0 - self.rate) ** lv for lv in range(levels + 1)]

    def level_of(self, step):
        """The level a (1-based) training step belongs to."""
        return (step - 1) // self.level_steps

    def __call__(self, step):
        if self.levels == 0:
            return tf.constant(False), tf.constant(0.0, tf.float32)
        step = tf.cast(step, tf.int64)
        level = tf.math.floordiv(step - 1, self.level_steps)
        fire = tf.logical_and(tf.logical_and(step > 1, tf.math.floormod(step - 1, self.level_steps) == 0),
                              level <= self.levels)
        kept = tf.gather(tf.constant(self.kept, tf.float32), tf.clip_by_value(level, 0, self.levels))
        return fire, 1.0 - kept

    def get_config(self):
        return {"class_name": self.__class__.__name__,
                "config": {"rate": self.rate, "level_steps": self.level_steps, "levels": self.levels, "kept": self.kept}}

    @classmethod
    def from_config(cls, config):
        return cls(**config.get("config", config))
