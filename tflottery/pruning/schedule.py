"""Our tfmot `PruningSchedule`: iterative magnitude pruning at level boundaries.

`IMPSchedule(rate, level_steps, levels, rewind_step=k)` lays out one fit as IMP: level 0 trains
`level_steps` (T) steps; each later level trains T - k steps, as `tflottery find` trains a level
rewound to step k from k to T. At the first step of level L (L = 1..levels) it answers "prune, to
sparsity 1 - kept[L]"; tfmot then keeps each kernel's round(size x kept[L]) weights of largest
magnitude. The `Rewind` callback has drawn that very mask from the trained weights just before and
rewound the survivors (pruned weights exactly zero), so tfmot's update keeps the mask as it is.

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
from tflottery.pruning.layout import LevelLayout


@keras.saving.register_keras_serializable(package="tflottery")
class IMPSchedule(tfmot.sparsity.keras.PruningSchedule):
    """Prune `rate` of the survivors at the start of each of `levels` levels (level 0: `level_steps` steps,
    later levels `level_steps - rewind_step`)."""

    def __init__(self, rate: float = 0.2, level_steps: int = 1, levels: int = 0, kept: Optional[list] = None,
                 rewind_step: int = 0):
        for name, value in (("rate", rate),):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0.0 <= value < 1.0:
                raise ConfigError(f"IMPSchedule {name}={value!r} must lie in [0, 1): the fraction of surviving "
                                  "weights removed per level.")
        LevelLayout(level_steps, levels, rewind_step)  # checks the three
        if kept is not None and (not isinstance(kept, (list, tuple)) or len(kept) != levels + 1 or any(
                isinstance(k, bool) or not isinstance(k, (int, float)) or not 0.0 <= k <= 1.0 for k in kept)):
            raise ConfigError(f"IMPSchedule kept={kept!r} must give the fraction kept at each of levels 0..{levels}.")
        if kept is not None and any(b > a for a, b in zip(kept, kept[1:])):
            raise ConfigError(f"IMPSchedule kept={list(kept)!r} grows from one level to the next: a pruned weight "
                              "never comes back, so give fractions that never increase.")
        self.rate, self.level_steps, self.levels = float(rate), int(level_steps), int(levels)
        self.rewind_step = int(rewind_step)
        self.kept = [float(k) for k in kept] if kept is not None else [(1.0 - self.rate) ** lv for lv in range(levels + 1)]

    @property
    def layout(self) -> LevelLayout:
        return LevelLayout(self.level_steps, self.levels, self.rewind_step)

    @property
    def pruned_steps(self) -> int:
        return self.layout.pruned_steps

    def level_start(self, level: int) -> int:
        return self.layout.level_start(level)

    def total_steps(self) -> int:
        return self.layout.total_steps()

    def level_of(self, done: int) -> int:
        return self.layout.level_of(done)

    def __call__(self, step):
        """tfmot asks with the 1-based step about to train (its wrapper counts before the update)."""
        if self.levels == 0:
            return tf.constant(False), tf.constant(0.0, tf.float32)
        done = tf.cast(step, tf.int64) - 1
        level = tf.where(done < self.level_steps, tf.constant(0, tf.int64),
                         1 + tf.math.floordiv(done - self.level_steps, self.pruned_steps))
        starts = tf.logical_or(tf.equal(done, self.level_steps),
                               tf.logical_and(done > self.level_steps,
                                              tf.equal(tf.math.floormod(done - self.level_steps, self.pruned_steps), 0)))
        fire = tf.logical_and(starts, tf.logical_and(level >= 1, level <= self.levels))
        kept = tf.gather(tf.constant(self.kept, tf.float32), tf.clip_by_value(level, 0, self.levels))
        return fire, 1.0 - kept

    def get_config(self):
        return {"class_name": self.__class__.__name__,
                "config": {"rate": self.rate, "level_steps": self.level_steps, "levels": self.levels, "kept": self.kept,
                           "rewind_step": self.rewind_step}}

    @classmethod
    def from_config(cls, config):
        return cls(**config.get("config", config))
