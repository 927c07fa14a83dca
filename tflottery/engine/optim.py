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


class TowerSteps:
    """What an optimizer needs for a population's tower loops (`PopulationModel`): its update at a given step,
    computed with the ops `apply_gradients` uses, touching no variable but the weights' and their slots, and
    not counting the step, so that each unit's steps can run in a loop of its own beside the others'."""

    def applies_at(self) -> bool:
        """Whether `apply_at` computes what `apply_gradients` does: no weight decay, clipping or moving average,
        a WarmupPiecewise schedule."""
        return (self.weight_decay is None and not self.use_ema and self._plain_update()
                and self.clipnorm is None and self.clipvalue is None and self.global_clipnorm is None
                and isinstance(self._learning_rate, WarmupPiecewise))

    def build_at(self, variables: list) -> None:
        """Slots for `variables` and the rate callbacks read (`learning_rate`), before `apply_at` is traced."""
        with tf.init_scope():
            self.build(variables)
            if not hasattr(self, "_current_learning_rate"):
                self._compute_current_learning_rate()

    def count_at(self, first, count, offset) -> None:
        """After `count` steps from optimizer step `first` by `apply_at`: the counter and the rate of the last
        step, as `apply_gradients` leaves them."""
        self._current_learning_rate.assign(self._learning_rate.rate_at(first + count - 1, offset))
        self.iterations.assign_add(count)

    def apply_at(self, grads_and_vars, iteration, offset) -> None:
        """`apply_gradients` at optimizer step `iteration` (the value `iterations` would hold), the schedule's
        offset given."""
        lr = self._learning_rate.rate_at(iteration, offset)
        shared = {}
        for gradient, variable in grads_and_vars:
            self._update_at(gradient, variable, iteration, lr, shared)
            if variable.constraint is not None:
                variable.assign(variable.constraint(variable))

    def _plain_update(self) -> bool:
        return True

    def _update_at(self, gradient, variable, iteration, lr, shared: dict) -> None:
        raise NotImplementedError


class FusedAdam(TowerSteps, keras.optimizers.Adam):
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
        if isinstance(gradient, tf.IndexedSlices) or not self._plain_update():
            return super().update_step(gradient, variable)
        shared = getattr(self, "_shared", None)
        self._update_at(gradient, variable, self.iterations, self.learning_rate, {} if shared is None else shared)

    def _plain_update(self) -> bool:
        return not self.amsgrad and not getattr(self, "adaptive_epsilon", False)

    def _update_at(self, gradient, variable, iteration, lr, shared: dict) -> None:
        dtype = variable.dtype
        if dtype not in shared:
            step = tf.cast(iteration + 1, dtype)
            beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
            shared[dtype] = dict(beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
                                 lr=tf.cast(lr, dtype), beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype))
        index = self._index_dict[self._var_key(variable)]
        tf.raw_ops.ResourceApplyAdam(var=variable.handle, m=self._momentums[index].handle,
                                     v=self._velocities[index].handle, grad=gradient, **shared[dtype])


class TowerSGD(TowerSteps, keras.optimizers.SGD):
    """tf_keras's SGD (its own update, unchanged) that a population's tower loops can step."""

    def _update_at(self, gradient, variable, iteration, lr, shared: dict) -> None:
        lr, momentum = tf.cast(lr, variable.dtype), tf.cast(self.momentum, variable.dtype)
        m = self.momentums[self._index_dict[self._var_key(variable)]]
        m.assign(-gradient * lr + m * momentum)  # SGD.update_step's dense update, op for op
        if self.nesterov:
            variable.assign_add(-gradient * lr + m * momentum)
        else:
            variable.assign_add(m)


def make_optimizer(config: TrainingConfig, steps: TrainingSteps,
                   fused: bool = False) -> "tuple[keras.optimizers.Optimizer, WarmupPiecewise]":
    """The configured optimizer and its learning-rate schedule; `fused`: the engine's graph kernels
    (Adam's update in one kernel, no XLA cluster per variable)."""
    schedule = WarmupPiecewise(config.lr, steps.warmup, steps.milestones, config.gamma)
    decay = config.weight_decay or None
    if config.optimizer == "adam":
        optimizer = (FusedAdam if fused else keras.optimizers.Adam)(schedule, weight_decay=decay)
    else:
        optimizer = (TowerSGD if fused else keras.optimizers.SGD)(schedule, momentum=config.momentum,
                                                                nesterov=config.nesterov, weight_decay=decay)
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

