"""The learning-rate schedule of tflottery's training, shared by `find` and IMP in a user's own fit."""
from __future__ import annotations

import tensorflow as tf

from tflottery.core.keras_compat import keras


@keras.saving.register_keras_serializable(package="tflottery")
class WarmupPiecewise(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `lr`, then multiply by `gamma` at each milestone step.

    The schedule is read at `optimizer step + offset`; `offset` is a variable, so one compiled
    model starts each level at its own step without retracing.
    """

    def __init__(self, lr: float, warmup: int = 0, milestones: tuple = (), gamma: float = 0.1):
        self.lr, self.warmup, self.gamma = float(lr), int(warmup), float(gamma)
        self.milestones = tuple(int(m) for m in milestones)
        self.offset = tf.Variable(0, dtype=tf.int64, trainable=False, name="schedule_offset")

    def __call__(self, step):
        return self.rate_at(step, self.offset)

    def rate_at(self, step, offset):
        """The rate at `step` with the offset's value given (a tensor read once, or the variable itself)."""
        step = tf.cast(step, tf.float32) + tf.cast(offset, tf.float32)
        rate = tf.constant(self.lr)
        for m in self.milestones:
            rate = tf.where(step >= m, rate * self.gamma, rate)
        if self.warmup:
            rate = rate * tf.minimum(1.0, (step + 1.0) / self.warmup)
        return rate

    def get_config(self):
        return {"lr": self.lr, "warmup": self.warmup, "milestones": list(self.milestones), "gamma": self.gamma}

    def start_at(self, step: int) -> None:
        """Read the schedule from `step` on while the optimizer's own counter restarts at 0 (a rewound level)."""
        self.offset.assign(int(step))
