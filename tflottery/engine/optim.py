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


def use_xla(jit_compile) -> bool:
    """--jit_compile: true, false, or auto: XLA on a GPU; on a CPU the graph with fused optimizer kernels,
    which trains a population of small networks twice as fast (benchmarks/population_speed.py)."""
    if jit_compile == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    return bool(jit_compile)


class FusedAdam(keras.optimizers.Adam):
    """tf_keras's Adam with each dense update in one kernel (ResourceApplyAdam: the same formula in one
    pass over a weight, its two slots and its gradient) instead of six elementwise ops, each a pass
    through memory. The float32 results differ from the op-by-op update in the last bits, which is why
    a run records the kernels it trains with (`RunStore.kernels`)."""

    def _internal_apply_gradients(self, grads_and_vars):
        self._shared = {}  # the step's scalars, computed once for all variables (dozens of ops per variable)
        try:
            for gradient, variable in grads_and_vars:
                self._update_step(gradient, variable)
        finally:
            self._shared = None
        return self.iterations.assign_add(1)

    def update_step(self, gradient, variable):
        if isinstance(gradient, tf.IndexedSlices) or self.amsgrad or getattr(self, "adaptive_epsilon", False):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        shared = getattr(self, "_shared", None)
        scalars = shared.get(dtype) if shared is not None else None
        if scalars is None:
            step = tf.cast(self.iterations + 1, dtype)
            beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
            scalars = dict(beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
                           lr=tf.cast(self.learning_rate, dtype), beta1=beta_1, beta2=beta_2,
                           epsilon=tf.cast(self.epsilon, dtype))
            if shared is not None:
                shared[dtype] = scalars
        index = self._index_dict[self._var_key(variable)]
        return tf.raw_ops.ResourceApplyAdam(var=variable.handle, m=self._momentums[index].handle,
                                            v=self._velocities[index].handle, grad=gradient, **scalars)


def make_optimizer(config: TrainingConfig, steps: TrainingSteps,
                   fused: bool = False) -> "tuple[keras.optimizers.Optimizer, WarmupPiecewise]":
    """The configured optimizer and its learning-rate schedule; `fused`: the engine's graph kernels
    (Adam's update in one kernel, no XLA cluster per variable)."""
    schedule = WarmupPiecewise(config.lr, steps.warmup, steps.milestones, config.gamma)
    decay = config.weight_decay or None
    if config.optimizer == "adam":
        optimizer = (FusedAdam if fused else keras.optimizers.Adam)(schedule, weight_decay=decay)
    else:
        optimizer = keras.optimizers.SGD(schedule, momentum=config.momentum, nesterov=config.nesterov,
                                         weight_decay=decay)
    if fused:
        optimizer.jit_compile = False
    return optimizer, schedule


def compile_model(model: keras.Model, config: TrainingConfig, steps: TrainingSteps, with_loss: bool = True,
                  jit: "bool | None" = None) -> keras.Model:
    """Compile for training on logits (every model in tflottery outputs logits); `with_loss=False` for
    a model whose train_step computes its own losses (the population model), which trains with the
    graph's fused kernels when not under XLA. `jit`: the run's recorded choice (default: the config's)."""
    jit = use_xla(config.jit_compile) if jit is None else jit
    optimizer, schedule = make_optimizer(config, steps, fused=not with_loss and not jit)
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


SLOT_LISTS = ("_momentums", "_velocities", "momentums", "_average_gradients", "_velocity_hats")


def optimizer_slots(model: keras.Model, variable) -> list:
    """The optimizer's state variables of `variable` (Adam's m and v, SGD's momentum, RMSprop's ...); [] before
    its first step."""
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    index = getattr(optimizer, "_index_dict", {}).get(optimizer._var_key(variable))
    if index is None:
        return []
    slots = [getattr(optimizer, name)[index] for name in SLOT_LISTS
             if isinstance(getattr(optimizer, name, None), list) and len(getattr(optimizer, name)) > index]
    return [s for s in slots if tuple(s.shape) == tuple(variable.shape)]

