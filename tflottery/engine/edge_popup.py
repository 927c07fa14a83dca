"""Supermasks: masks on untrained weights (Zhou et al. 2019; Ramanujan et al. 2020).

* `untrained_accuracies`: a level's mask on the initial weights, and on their signed constants
  (each kept weight = its initial sign x its layer's initial standard deviation), with no training.
* `EdgePopup`: a layer whose weights stay frozen while a score per weight trains; the forward
  pass keeps the top-k weights by |score| (k fixed per layer), the backward pass goes straight
  through the top-k to the scores (edge-popup). Training it finds a strong lottery ticket: a
  subnetwork of random weights that classifies without any weight training.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tflottery.core.keras_compat import keras
from tflottery.engine.optim import compile_model, reset_optimizer
from tflottery.engine.trainer.base import UnitResult
from tflottery.engine.trainer.fit import train_group
from tflottery.engine.trainer.population import PopulationData, base_name, population_model
from tflottery.models.weights import transparent
from tflottery.pruning.wrap import wrapped


def signed_constant(weights: dict, names) -> dict:
    """Each weight of `names` replaced by its sign x its layer's standard deviation; others kept."""
    return {k: (np.sign(v) * v.std()).astype(v.dtype) if k in names else v for k, v in weights.items()}


def untrained_accuracies(ctx, masks: dict) -> dict:
    """Test accuracy of `masks` on the replicate's initial weights and on their signed constants (no training)."""
    training, steps, init = ctx.config.training, ctx.plan.training, ctx.init
    return {key: ctx.trainer.test_accuracy(weights, masks, ctx.data, training, steps)
            for key, weights in (("mask_at_init_accuracy", init), ("signed_constant_accuracy", signed_constant(init, masks)))}


def frozen_weights(init: dict, names, how: str, kept: dict, seed: int) -> dict:
    """The frozen weights a supermask is learned on: the run's initialisation, its signed constants, or
    Kaiming-uniform weights scaled by 1/sqrt(kept fraction) (Ramanujan et al.'s scaled init)."""
    if how == "init":
        return dict(init)
    if how == "signed_constant":
        return signed_constant(init, names)
    rng = np.random.default_rng(seed)
    out = dict(init)
    for k in names:
        shape = init[k].shape
        fan_in = int(np.prod(shape[:-1]))
        bound = np.sqrt(6.0 / fan_in) / np.sqrt(max(kept[k], 1e-12))
        out[k] = rng.uniform(-bound, bound, shape).astype(init[k].dtype)
    return out


@transparent
@keras.saving.register_keras_serializable(package="tflottery")
class EdgePopup(keras.layers.Wrapper):
    """A Dense or Conv layer whose weights are frozen; `scores` choose which `keep` of its kernel weights act."""

    def __init__(self, layer, keep: int, **kwargs):
        super().__init__(layer, **kwargs)
        self.keep = int(keep)

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        self.layer.trainable = False
        shape = self.layer.kernel.shape
        fan_in = int(np.prod(shape[:-1]))
        bound = np.sqrt(6.0 / fan_in)  # Kaiming uniform, as edge-popup initialises its scores
        self.scores = self.add_weight("scores", shape=shape, initializer=keras.initializers.RandomUniform(-bound, bound),
                                      trainable=True)
        super().build(input_shape)

    def mask(self):
        """The top-`keep` weights by |score| (a 0/1 tensor of the kernel's shape).

        The threshold is found by bisection on the value (40 halvings: below float32's spacing),
        counting in O(n) per step: 5x faster than a top-k sort of a 784x300 kernel on a CPU.
        """
        magnitude = tf.abs(self.scores)
        keep = tf.constant(self.keep, tf.int32)

        def halve(i, low, high):
            middle = (low + high) / 2
            enough = tf.reduce_sum(tf.cast(magnitude >= middle, tf.int32)) >= keep
            return i + 1, tf.where(enough, middle, low), tf.where(enough, high, middle)

        _, low, _ = tf.while_loop(lambda i, low, high: i < 40, halve,
                                  (0, tf.reduce_min(magnitude), tf.reduce_max(magnitude)))
        return tf.cast(magnitude >= low, self.scores.dtype)

    def call(self, inputs):
        magnitude = tf.abs(self.scores)
        through = self.mask() + magnitude - tf.stop_gradient(magnitude)  # straight through the top-k
        kernel = self.layer.kernel * tf.cast(through, self.layer.kernel.dtype)
        if isinstance(self.layer, keras.layers.Dense):
            out = tf.tensordot(inputs, kernel, [[inputs.shape.rank - 1], [0]])
        else:
            out = self.layer.convolution_op(inputs, kernel)
        if self.layer.use_bias:
            out = tf.nn.bias_add(out, self.layer.bias)
        return self.layer.activation(out) if self.layer.activation is not None else out

    def get_config(self):
        return {**super().get_config(), "keep": self.keep}


def train_supermask(ctx, unit, seed: int) -> UnitResult:
    """Train a supermask unit's scores on its frozen weights: (learned masks, frozen, mask x frozen, result)."""
    from tflottery.core.errors import ConfigError

    if not unit.start.masks:
        raise ConfigError("A supermask needs prunable layers: this model has none.")
    _, by_variable = wrapped(ctx.setup.base, list(unit.start.masks))
    if by_variable:
        raise ConfigError(f"A supermask learns scores for Dense and Conv kernels; {', '.join(by_variable)} have none: "
                          "leave those layers dense (--unpruned) for the supermask branch.")
    keep = {k.split("/")[0]: int(m.sum()) for k, m in unit.start.masks.items()}
    keras.utils.set_random_seed(seed)  # the scores' initialisation
    model = population_model(ctx.setup.base, list(keep), 1,
                             wrap=lambda copy, name: EdgePopup(copy, keep[name], name=f"edge_popup_{copy.name}"))
    compile_model(model, unit.training, unit.steps, with_loss=False, jit=ctx.trainer.jit)
    model.set_tower(0, unit.weights(), {})
    reset_optimizer(model, 0)
    frozen = model.get_tower(0)
    (result,) = train_group(model, PopulationData(unit.data, [unit.seed("data_order")]), unit.data, unit.steps,
                            start=0, end=unit.start.end_step, callbacks=ctx.trainer.callbacks,
                            label=f"{unit.label}: ", verbose=unit.training.verbose)
    masks = learned_masks(model)
    final = {k: v * masks[k] if k in masks else v for k, v in model.get_tower(0).items()}
    return UnitResult(masks, frozen, final, result)


def learned_masks(model: keras.Model) -> dict:
    """Each layer's exact top-`keep` weights by |score| (the training mask, barring exact ties)."""
    out = {}
    for layer in model.layers:
        if isinstance(layer, EdgePopup):
            magnitude = np.abs(layer.scores.numpy()).ravel()
            mask = np.zeros(magnitude.size, bool)
            mask[np.argsort(-magnitude, kind="stable")[:layer.keep]] = True
            out[base_name(f"{layer.layer.name}/kernel", 0)] = mask.reshape(layer.scores.shape)
    return out
