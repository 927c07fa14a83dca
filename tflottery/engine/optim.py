"""Optimizers, the learning-rate schedule, and compiling a wrapped model for a level.

Each level starts with fresh optimizer moments (Adam's bias correction restarts) while the
learning-rate schedule resumes at the level's start step: a ticket rewound to step k trains
from k to the end with the schedule at k, as in open_lth (Frankle et al. 2020).
"""
from __future__ import annotations

import logging

import tensorflow as tf

from tflottery.config import TrainingConfig
from tflottery.core.keras_compat import keras
from tflottery.core.schedules import WarmupPiecewise
from tflottery.engine.plan import TrainingSteps


def make_optimizer(config: TrainingConfig, steps: TrainingSteps) -> "tuple[keras.optimizers.Optimizer, WarmupPiecewise]":
    """The configured optimizer and its learning-rate schedule."""
    schedule = WarmupPiecewise(config.lr, steps.warmup, steps.milestones, config.gamma)
    decay = config.weight_decay or None
    if config.optimizer == "adam":
        return keras.optimizers.Adam(schedule, weight_decay=decay), schedule
    return keras.optimizers.SGD(schedule, momentum=config.momentum, nesterov=config.nesterov,
                                weight_decay=decay), schedule


def compile_model(model: keras.Model, config: TrainingConfig, steps: TrainingSteps, with_loss: bool = True) -> keras.Model:
    """Compile for training on logits (every model in tflottery outputs logits); `with_loss=False` for
    a model whose train_step computes its own losses (the population model)."""
    optimizer, schedule = make_optimizer(config, steps)
    jit = config.jit_compile
    if jit and tf.distribute.get_strategy().num_replicas_in_sync > 1 and not tf.config.list_physical_devices("GPU"):
        jit = False  # XLA has no CPU collectives (b/194942685): replicas on CPUs train without it
        logging.getLogger("tflottery").info("XLA off: collectives across CPU replicas are not supported by XLA.")
    losses = dict(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")]) if with_loss else {}
    model.compile(optimizer=optimizer, steps_per_execution=config.steps_per_execution, jit_compile=jit, **losses)
    model.lr_schedule = schedule
    return model


def reset_optimizer(model: keras.Model, start_step: int = 0) -> None:
    """Fresh optimizer state (step counter and moments zero) with the schedule starting at `start_step`."""
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # never the loss scale
    for v in optimizer.variables:
        v.assign(tf.zeros_like(v))
    schedule = getattr(model, "lr_schedule", None)
    if isinstance(schedule, WarmupPiecewise):
        schedule.start_at(start_step)
