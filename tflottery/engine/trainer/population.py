"""K units of one architecture trained as one compiled program, each exactly as it would train alone.

The population model holds K towers: copies of the network (layers renamed `<name>_u<c>`,
prunable ones in frozen-mask wrappers), each with its own input, batches, mask and weights.
The training step sums the towers' losses, each computed by the same loss function a single
network uses: the gradient of a sum with respect to one tower's weights is exactly that
tower's own gradient (the sum passes 1.0 to each term), the optimizer updates each variable
from its own gradient and its own slots, and nothing crosses between towers. So a unit trained
in a group of K is the unit trained alone (K = 1), bit for bit: the tests check it.

One compiled program for K small networks keeps a multi-core CPU busy where one small network
cannot, and amortises the per-step cost of Keras and TensorFlow over K units. With the graph's
kernels (the CPU default) each tower's steps run as a while loop of their own, its batches
gathered inside the program: a summed step makes every tower wait for the slowest twice a step
(where the losses are summed, and where the optimizer counts the step), which left a core idle
a third of the time in some epochs. The loops compute each tower's step with the same ops
(its own loss's gradient is the sum's; Adam at the step the optimizer's counter would hold), so
the bytes are the summed step's (tests/unit/engine/test_tower_loops.py); elsewhere (XLA, weight
decay, a loss or a random draw the towers share) the summed step stays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tflottery.core.keras_compat import keras
from tflottery.data import batch_indices, preprocess
from tflottery.engine.trainer.base import Tally
from tflottery.models.built import BuiltModel
from tflottery.models.surgery import stochastic_layers
from tflottery.models.weights import weight_variables
from tflottery.pruning.wrap import frozen_mask, mask_by_variable, mask_variables, wrapped

SUFFIX = "_u{}"
ZEROS_KEPT = True  # set_tower zeros pruned weights and their gradients are masked: they stay zero


def population_model(base: keras.Model, prune: list, units: int, wrap=None) -> "PopulationModel":
    """`units` towers of `base` (layers renamed `<name>_u<c>`; the targets named in `prune`, paths or layer
    names, masked: Dense and Conv kernels in frozen-mask wrappers, or in what `wrap(copy, name)` makes of them,
    other targets by a `VariableMask`)."""
    wrap = wrap or (lambda copy, name: frozen_mask(copy, zeros_kept=ZEROS_KEPT))
    layers, by_variable = wrapped(base, prune)
    inputs, outputs = [], []
    for c in range(units):
        inp = keras.Input(base.input_shape[1:], name=f"u{c}_input")

        def clone(layer, c=c):
            copy = layer.__class__.from_config({**layer.get_config(), "name": layer.name + SUFFIX.format(c)})
            return wrap(copy, layer.name) if layer.name in layers else copy

        if isinstance(base, BuiltModel):  # the user's code builds each tower
            tower = keras.Model(inp, base.fresh(base.name + SUFFIX.format(c))(inp))
        else:
            tower = keras.models.clone_model(base, input_tensors=inp, clone_function=clone)
        variables = weight_variables(tower)
        for path in by_variable:
            layer, _, rest = path.partition("/")
            mask_by_variable(variables[f"{layer}{SUFFIX.format(c)}/{rest}"])
        inputs.append(inp)
        outputs.append(tower.output)
    return PopulationModel(inputs, outputs, name=f"{base.name}_x{units}")


class PopulationModel(keras.Model):
    """A Functional model of K towers with a training step that trains each tower as if alone."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.units = len(self.inputs)
        self.unit_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.example_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
        self.unit_metrics = [(keras.metrics.Mean(name=f"u{c}_loss"),
                              keras.metrics.SparseCategoricalAccuracy(name=f"u{c}_accuracy")) for c in range(self.units)]
        # Plain attributes, out of Keras' sight: an attribute holding variables would make Keras track
        # them as the model's own (frozen supermask weights would then train).
        object.__setattr__(self, "_weights_of", [self._tower(weight_variables(self), c) for c in range(self.units)])
        object.__setattr__(self, "_masks_of", [self._tower(mask_variables(self), c) for c in range(self.units)])
        self._forward = None

    @staticmethod
    def _tower(variables: dict, c: int) -> dict:
        return {base_name(name, c): v for name, v in variables.items() if base_name(name, c) != name}

    @property
    def metrics(self):
        return [m for pair in self.unit_metrics for m in pair]

    def train_step(self, data):
        x, y = data
        optimizer = self.optimizer
        scaled = isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            outputs = self(list(x), training=True)
            logits = [tf.cast(z, tf.float32) for z in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]
            if tf.distribute.get_replica_context().num_replicas_in_sync > 1:  # the global batch's mean
                losses = [tf.nn.compute_average_loss(self.example_loss(y[c], logits[c])) for c in range(self.units)]
                regularisation = [tf.nn.scale_regularization_loss(tf.add_n(self.losses))] if self.losses else []
            else:  # exactly the loss a single network compiled with this loss computes
                losses = [self.unit_loss(y[c], logits[c]) for c in range(self.units)]
                regularisation = [tf.add_n(self.losses)] if self.losses else []
            total = tf.add_n(losses + regularisation)
            objective = optimizer.get_scaled_loss(total) if scaled else total
        variables = self.trainable_variables
        grads = tape.gradient(objective, variables)
        if scaled:
            grads = optimizer.get_unscaled_gradients(grads)
        optimizer.apply_gradients(zip(grads, variables))
        for c, (loss, accuracy) in enumerate(self.unit_metrics):
            loss.update_state(losses[c])
            accuracy.update_state(y[c], logits[c])
        return {m.name: m.result() for m in self.metrics}

    # ------------------------------------------------------------------ each tower in a loop of its own
    def pipeline(self, population: "PopulationData", start: int, end: int):
        """What `fit` reads for steps [start, end): each step's batch indices, gathered by the tower loops, or the
        batches themselves where the towers train in one step."""
        if not self._loops_towers():
            return population.train_pipeline(start, end)
        object.__setattr__(self, "_source", population.data.train_tensors)  # out of Keras' tracking
        object.__setattr__(self, "_divisor", population.data.divisor)
        return population.index_pipeline(start, end)

    def _loops_towers(self) -> bool:
        """Whether each tower's steps run as a loop of their own, side by side: with the graph's kernels (an
        optimizer that `applies_at`) on one device, and no loss or random draw shared by the towers."""
        optimizer = self.optimizer
        return (not self.jit_compile and callable(getattr(optimizer, "applies_at", None)) and optimizer.applies_at()
                and not tf.distribute.has_strategy() and not self.losses and not stochastic_layers(self))

    def make_train_function(self, force=False):
        if (self.train_function is not None and not force) or not self._loops_towers():
            return super().make_train_function(force)
        loops = tf.function(self._tower_loops, reduce_retracing=True)
        self.train_function = lambda iterator: loops(iterator, *self._source, tf.constant(self._divisor))
        return self.train_function

    def _tower_loops(self, iterator, images, labels, divisor):
        """`steps_per_execution` steps of every tower, each tower's a while loop of its own: no tower waits at a
        step's end for the others (a step of K towers has one barrier where the loss is summed, and one where the
        optimizer counts the step), so the cores stay busy. Each tower computes its step exactly as `train_step`
        does (its loss's gradient is the sum's; the optimizer at the step `iterations` would hold)."""
        count = tf.cast(self._steps_per_execution, tf.int32)
        batches = tf.TensorArray(tf.int64, size=count)
        for s in tf.range(count):
            batches = batches.write(s, tf.cast(next(iterator), tf.int64))
        batches = batches.stack()
        optimizer = self.optimizer
        optimizer.build_at(self.trainable_variables)
        first, offset = tf.identity(optimizer.iterations), tf.identity(optimizer._learning_rate.offset)
        for c in range(self.units):
            for s in tf.range(count):
                self._tower_step(c, batches[s, c], (images, labels, divisor), first + tf.cast(s, tf.int64), offset)
        optimizer.count_at(first, tf.cast(count, tf.int64), offset)
        self._train_counter.assign_add(tf.cast(count, tf.int64))
        return {m.name: m.result() for m in self.metrics}

    def _tower_step(self, c: int, indices, source: tuple, iteration, offset) -> None:
        tower = self._towers()[c]
        images, labels, divisor = source
        x, y = preprocess(tf.gather(images, indices), divisor), tf.gather(labels, indices)
        with tf.GradientTape() as tape:
            logits = tf.cast(tower(x, training=True), tf.float32)
            loss = self.unit_loss(y, logits)
        variables = tower.trainable_variables
        self.optimizer.apply_at(zip(tape.gradient(loss, variables), variables), iteration, offset)
        mean, accuracy = self.unit_metrics[c]
        mean.update_state(loss)
        accuracy.update_state(y, logits)

    def _towers(self) -> list:
        if getattr(self, "_tower_models", None) is None:
            object.__setattr__(self, "_tower_models", [keras.Model(self.inputs[c], self.outputs[c])
                                                       for c in range(self.units)])
        return self._tower_models

    # ------------------------------------------------------------------ one unit's weights
    def get_tower(self, c: int, what: str = "weights") -> dict:
        source = self._weights_of[c] if what == "weights" else self._masks_of[c]
        values = {k: v.numpy() for k, v in source.items()}
        return {k: v.astype(bool) for k, v in values.items()} if what == "masks" else values

    def set_tower(self, c: int, weights: dict, masks: dict) -> None:
        """Tower c at `weights` (exactly its variables) under `masks` (its pruned weights set to zero)."""
        variables = self._weights_of[c]
        if set(weights) != set(variables):
            raise ValueError(f"tower weights do not match: missing {sorted(set(variables) - set(weights))[:3]}, "
                             f"unexpected {sorted(set(weights) - set(variables))[:3]}")
        for name, value in weights.items():
            variables[name].assign(value)
        for name, mask in masks.items():
            self._masks_of[c][name].assign(np.asarray(mask, np.float32))
            variables[name].assign(variables[name] * self._masks_of[c][name])

    def keep_slots(self, c: int, keep: dict) -> None:
        """Zero tower c's optimizer state outside `keep` ({kernel: bool}): a weight a mask update dropped or
        regrew starts with no moment, as a weight pruned from the start has none."""
        from tflottery.engine.optim import optimizer_slots

        for name, mask in keep.items():
            for slot in optimizer_slots(self, self._weights_of[c][name]):
                slot.assign(slot * np.asarray(mask, slot.dtype.as_numpy_dtype))

    # ------------------------------------------------------------------ evaluation
    def evaluate_units(self, dataset) -> list[dict]:
        """Per unit: cross-entropy loss (mean, float64) and top-1 accuracy on `dataset` (images, labels)."""
        if self._forward is None:  # one trace for every batch size and dataset
            spec = tf.TensorSpec([None, *self.inputs[0].shape[1:]], tf.float32)
            self._forward = tf.function(lambda images: self([images] * self.units, training=False),
                                        input_signature=[spec])
        tallies = [Tally() for _ in range(self.units)]
        for images, labels in dataset:
            outputs = self._forward(images)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            y = labels.numpy()
            for tally, z in zip(tallies, outputs):
                tally.add(z.numpy(), y)
        return [tally.result() for tally in tallies]


def base_name(name: str, c: int) -> str:
    """"fc1_u3/kernel" -> "fc1/kernel" for tower 3 (unchanged if it is not tower c's)."""
    layer, _, variable = name.partition("/")
    suffix = SUFFIX.format(c)
    return f"{layer[:-len(suffix)]}/{variable}" if layer.endswith(suffix) else name


@dataclass
class PopulationData:
    """Batches for K towers: tower c reads the order of `seeds[c]`; one gather per step for all towers."""

    data: object
    seeds: list

    def train_pipeline(self, start: int, end: int):
        d, k = self.data, len(self.seeds)
        indices = np.stack([batch_indices(d.num_train, d.batch_size, s, start, end) for s in self.seeds], axis=1)
        images, labels = d.train_tensors

        def gather(i):
            x, y = preprocess(tf.gather(images, i), d.divisor), tf.gather(labels, i)
            return tuple(x[c] for c in range(k)), tuple(y[c] for c in range(k))

        ds = tf.data.Dataset.from_tensor_slices(indices).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def index_pipeline(self, start: int, end: int):
        """Each step's batch indices, [K, batch]: what `train_pipeline` gathers, for a model that gathers itself."""
        d = self.data
        indices = np.stack([batch_indices(d.num_train, d.batch_size, s, start, end) for s in self.seeds], axis=1)
        options = tf.data.Options()
        options.autotune.enabled = False  # its tuning threads took CPU from the towers on 2 cores (K=5: 0.86 against
        # 0.73 ms a tower-step, median of 9 epochs each); there is nothing here to tune
        return tf.data.Dataset.from_tensor_slices(indices).prefetch(2).with_options(options)
