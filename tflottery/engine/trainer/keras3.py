"""The Keras 3 trainer (`--keras=3 --backend=tensorflow|jax`): the run's units trained as Keras 3 models.

The run keeps its architecture as tf_keras (what tickets, branches and the store read); this
trainer translates it to Keras 3 once per output head (`tflottery.models.keras3.translate`) and
trains each unit as `find` does on tf_keras: the unit's start weights, its mask (pruned weights
zero, kept zero by a `TicketMask` constraint the optimizer applies after every update), its own
batch order ([start, end) of its seeded order), fresh optimizer moments and step counter with the
learning-rate schedule read from the unit's start step, and evaluation of the validation and
test sets at the same steps with the same float64 tally. On TensorFlow units train one at a
time through Keras 3's `fit`; on JAX a group of units trains as one jitted program of towers
(`tflottery.engine.trainer.jax_towers`), each unit bit for bit as alone. The backend is part of
the run's identity, so a run resumed or extended on the same backend computes with the same kernels.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from tflottery.core.errors import ConfigError
from tflottery.engine.trainer.base import Tally, Trainer, UnitResult
from tflottery.engine.trainer.fit import LevelResult


def keras_on(backend: str):
    """Keras 3 on `backend`: chosen before Keras 3 loads; a process that loaded it on another is refused."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
    import keras

    if keras.backend.backend() != backend:
        raise ConfigError(f"--backend={backend}: this process loaded Keras 3 on {keras.backend.backend()} already "
                          f"(KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}; tfmot loads Keras 3 as tflottery's "
                          f"pruning code loads). Start Python with KERAS_BACKEND={backend} in the environment, or "
                          f"train on --backend={keras.backend.backend()}.")
    return keras


def warmup_piecewise(keras, lr: float, warmup: int, milestones: tuple, gamma: float, offset: int):
    """tflottery's WarmupPiecewise in Keras 3, read at `optimizer step + offset` (the same float32 arithmetic)."""

    class WarmupPiecewise3(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            ops = keras.ops
            step = ops.cast(step, "float32") + ops.cast(offset, "float32")
            rate = ops.convert_to_tensor(lr, "float32")
            for m in milestones:
                rate = ops.where(step >= m, rate * gamma, rate)
            if warmup:
                rate = rate * ops.minimum(1.0, (step + 1.0) / warmup)
            return rate

        def get_config(self):
            return {"lr": lr, "warmup": warmup, "milestones": list(milestones), "gamma": gamma, "offset": offset}

    return WarmupPiecewise3()


def variable_mask(keras, shape: tuple):
    """A kernel constraint (weights times a mask variable) whose mask changes without recompiling the step."""

    class VariableMask(keras.constraints.Constraint):
        def __init__(self):
            self.values = keras.Variable(np.ones(shape, "float32"), trainable=False, name="ticket_mask")

        def __call__(self, w):
            return w * keras.ops.cast(self.values, w.dtype)

    return VariableMask()


def training_key(training) -> str:
    """What of a TrainingConfig changes the compiled step (its hashed fields), as a key."""
    import json

    from tflottery.config import hashed_fields

    return json.dumps(hashed_fields(training), sort_keys=True)


BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
KERAS3_NOT_YET = {"supermask": "trains scores, not weights", "set": "rewires masks while training",
                  "rigl": "rewires masks while training"}
TF_KERAS_SCORES = ("snip", "grasp", "synflow")  # score a tf_keras copy of the network, which Keras 3 code has not


class Keras3Trainer(Trainer):
    """Trains units of the run's architecture (`base`, tf_keras) as Keras 3 models on `backend`."""

    name = "keras3"

    def __init__(self, base, prune: list, jit: bool = False, capacity: int = 1, callbacks: tuple = (),
                 backend: str = "tensorflow"):
        self.base, self.prune, self.backend = base, list(prune), backend
        self.keras = keras_on(backend)
        self.jit = jit or backend == "jax"  # TensorFlow: the run's kernels (numerics.json); JAX compiles always
        self.capacity = capacity if backend == "jax" else 1
        self.callbacks, self.options = (), {"backend": backend}
        self._models: dict = {}
        self._towers: dict = {}
        self._optimizers: dict = {}

    # ------------------------------------------------------------------ the kind
    @classmethod
    def identity(cls, training) -> dict:
        return {"keras": 3, "backend": training.backend}  # another library's kernels: another run

    @classmethod
    def options_of(cls, training) -> dict:
        return {"backend": training.backend}

    @classmethod
    def population(cls, config, weights: int, distributed: bool = False) -> "tuple[int, str]":
        if config.training.backend != "jax":
            return 1, f"1 (Keras 3 on {BACKEND_NAMES[config.training.backend]} trains one unit at a time)"
        return super().population(config, weights, distributed)

    @classmethod
    def check(cls, setup, callbacks: tuple = (), executor: str = "local") -> None:
        """Refuse, before any work, what the Keras 3 trainer does not train yet (each with its tf_keras way)."""
        if callbacks or executor != "local":
            raise ConfigError("--keras=3 trains in this process without Keras callbacks (tf_keras callbacks cannot "
                              "watch a Keras 3 fit) and without other executors yet: drop callbacks= / --executor, "
                              "or leave --keras unset.")
        t, plan = setup.config.training, setup.plan
        problems = [f"branch {b.kind} ({KERAS3_NOT_YET[b.kind]})" for b in setup.branches if b.kind in KERAS3_NOT_YET]
        from tflottery.models.built import Keras3Network

        if isinstance(setup.base, Keras3Network):
            problems += [f"branch {b.kind} (it scores a tf_keras copy of the network, and your Keras 3 code builds "
                         "none)" for b in setup.branches if b.kind in TF_KERAS_SCORES]
        if setup.stochastic:
            problems.append(f"layers that draw random numbers ({', '.join(setup.stochastic)}: their streams are not "
                            "seeded per unit on Keras 3, so a resumed run would differ)")
        if plan.rewind_step is None:
            problems.append("--rewind=auto (its probe evaluates tf_keras populations)")
        if plan.strategy.name == "early_bird":
            problems.append("--strategy=early_bird (it stops a unit mid-training)")
        problems += [flag for flag, on in (("--distribute", t.distribute != "none"),
                                           ("--precision", t.precision is not None),
                                           ("--tensorboard", t.tensorboard)) if on]
        if problems:
            raise ConfigError(f"--keras=3 does not train {'; '.join(problems)} yet: leave --keras unset to train this "
                              "run with tf_keras + tfmot.")

    @classmethod
    def check_analysis(cls, analysis: str, run) -> None:
        raise ConfigError(f"{run} trains on Keras 3, and the {analysis} analysis interpolates tf_keras population "
                          "models: run it on a tf_keras run of the experiment (leave --keras unset).")

    def model_for(self, *args, **kwargs):
        raise ConfigError("This analysis evaluates tf_keras population models, which a --keras=3 run does not train: "
                          "run it on a tf_keras run (leave --keras unset).")

    def _model(self, classes):
        from tflottery.models.built import Keras3Network

        if isinstance(self.base, Keras3Network):  # the user's code: one instance, its head its own (`with_head`)
            if classes not in (None, int(self.base.output_shape[-1])):
                from tflottery.models import with_head

                with_head(self.base, classes, 0)  # says why in one line
            if None not in self._models:
                self._models[None] = self.base.fresh()
            return self._models[None]
        if classes not in self._models:
            from tflottery.models import with_head
            from tflottery.models.keras3 import translate

            base = self.base if classes is None else with_head(self.base, classes, 0)
            self._models[classes] = translate(base, to=3)
        return self._models[classes]

    def train(self, units: list) -> list[UnitResult]:
        if self.backend == "jax":
            first = units[0]
            optimizer, slots = self._optimizer(first.start.head_classes, first.training, first.steps,
                                               first.start.start_step)
            return self._towers_for(first.start.head_classes, first.training).train(units, optimizer, slots)
        return [self._train(unit) for unit in units]

    def _towers_for(self, classes, training):
        if classes not in self._towers:
            from tflottery.engine.trainer.jax_towers import JaxTowers

            self._towers[classes] = JaxTowers(self.keras, self._model(classes), self.prune, training.steps_per_execution)
        return self._towers[classes]

    def _optimizer(self, classes, training, steps, start_step: int):
        """A built optimizer of `training` with the schedule at `start_step`, and its fresh state (zeros)."""
        key = (classes, training_key(training), steps, start_step)
        if key not in self._optimizers:
            optimizer = self._make_optimizer(training, steps, start_step)
            optimizer.build(self._model(classes).trainable_variables)
            self._optimizers[key] = (optimizer, [np.array(v) for v in optimizer.variables])
        return self._optimizers[key]

    def _make_optimizer(self, training, steps, start_step: int):
        keras = self.keras
        rate = warmup_piecewise(keras, training.lr, steps.warmup, tuple(steps.milestones), training.gamma, start_step)
        decay = training.weight_decay or None
        if training.optimizer == "adam":
            return keras.optimizers.Adam(rate, weight_decay=decay)
        return keras.optimizers.SGD(rate, momentum=training.momentum, nesterov=training.nesterov, weight_decay=decay)

    def _start(self, model, weights: dict, masks: dict) -> None:
        """`model` at `weights` under `masks`: pruned weights zero, kept zero after every update by a constraint
        that reads its mask from a variable (so one compiled step serves every unit)."""
        from tflottery.models.keras3 import set_weights, weight_variables

        set_weights(model, weights)
        variables = weight_variables(model)
        for kernel, mask in masks.items():
            if kernel not in self.prune and kernel.split("/")[0] not in self.prune:  # paths, or layers (older payloads)
                continue
            variable = variables[kernel]
            if not hasattr(variable.constraint, "values"):
                variable.constraint = variable_mask(self.keras, tuple(variable.shape))
            variable.constraint.values.assign(np.asarray(mask, np.float32))
            variable.assign(np.array(variable) * np.asarray(mask, np.float32))

    def _compile(self, model, training, steps, start_step: int) -> None:
        """Compiled for `training` from `start_step` with fresh optimizer state: compiled once per configuration,
        the optimizer's state (step counter and moments) zeroed for every later unit."""
        key = (training_key(training), steps, start_step)
        if getattr(model, "_tflottery_compiled", None) == key:
            for variable in model.optimizer.variables:
                variable.assign(np.zeros(variable.shape, variable.dtype))
            return
        keras = self.keras
        model.compile(self._make_optimizer(training, steps, start_step),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")], jit_compile=self.jit)
        model._tflottery_compiled = key

    def _train(self, unit) -> UnitResult:
        from tflottery.models.keras3 import get_weights

        start = unit.start
        model = self._model(start.head_classes)
        self._start(model, unit.weights(), start.masks)
        self._compile(model, unit.training, unit.steps, start.start_step)  # fresh moments, the schedule at start
        self.keras.utils.set_random_seed(unit.seed("keras"))
        started = get_weights(model)
        result, began = LevelResult(), time.perf_counter()
        every, begin, end = unit.steps.eval_every, start.start_step, start.end_step
        evals = set(range(begin + every, end, every)) | {end}
        kept = {c for c in start.captures if begin < c <= end}
        result.history.append({"step": begin, **self._evaluate(model, unit.data)})
        position = begin
        for point in sorted(evals | kept):
            history = model.fit(self._batches(unit, position, point), epochs=1, steps_per_epoch=point - position,
                                shuffle=False, verbose=0)
            position = point
            if point in kept:
                result.captured[point] = get_weights(model)
            if point in evals:
                logs = history.history
                result.history.append({"step": point, "train_loss": float(logs["loss"][-1]),
                                       "train_accuracy": float(logs["accuracy"][-1]), **self._evaluate(model, unit.data)})
        result.wall_time_s = time.perf_counter() - began
        return UnitResult(start.masks, started, get_weights(model), result)

    @staticmethod
    def _batches(unit, start: int, end: int):
        """Steps [start, end) of the unit's seeded batch order, as the tf_keras trainer reads them."""
        import tensorflow as tf

        from tflottery.data import batch_indices, preprocess

        data = unit.data
        indices = batch_indices(data.num_train, data.batch_size, unit.seed("data_order"), start, end)
        images, labels = data.train_tensors
        ds = tf.data.Dataset.from_tensor_slices(indices).map(
            lambda i: (preprocess(tf.gather(images, i), data.divisor), tf.gather(labels, i)),
            num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    @staticmethod
    def _evaluate(model, data) -> dict:
        row = {}
        for prefix, dataset in (("val", data.validation), ("test", data.test)):
            if dataset is None:
                continue
            tally = Tally()
            for images, labels in dataset:
                tally.add(model.predict_on_batch(images.numpy()), labels.numpy())
            row.update({f"{prefix}_{k}": v for k, v in tally.result().items()})
        return row

    def test_accuracy(self, weights: dict, masks: dict, data, training, steps) -> float:
        if self.backend == "jax":
            towers = self._towers_for(None, training)
            masked = {k: (w * masks[k] if k in masks else w) for k, w in weights.items()}
            state = ([masked[k] for k in towers.trainable], [towers.value(masked, k) for k in towers.non_trainable])
            return towers.evaluate([state], data)[0]["test_accuracy"]
        model = self._model(None)
        self._start(model, weights, masks)
        return self._evaluate(model, data)["test_accuracy"]
