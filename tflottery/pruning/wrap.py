"""tfmot pruning wrappers on any Sequential/Functional tf_keras model, and the masks inside them.

`wrap` puts `FrozenMaskWrapper`s (tfmot's `PruneLowMagnitude` holding a level's frozen mask)
on the prunable layers. The wrapper multiplies each pruned weight by its mask in the forward
pass, so the gradient of a pruned weight is exactly zero, and with zeroed weights and fresh
optimizer state they stay exactly zero in *any* training loop: `fit`, `train_on_batch`, a
`GradientTape` with `optimizer.apply_gradients`, Adam or SGD with momentum alike (tfmot alone
re-masks the variable before each forward pass only while its schedule runs, so momentum
revives pruned weights between steps).

Weights are addressed by `"<layer name>/<variable>"` (`tflottery.models.weights`) on wrapped
and plain models alike, so masks and rewind weights move between them.
"""
from __future__ import annotations

import inspect

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from tflottery.core.errors import ModelError
from tflottery.core.keras_compat import keras
from tflottery.core.names import is_layer_kernel, layer_of
from tflottery.models.channels import graph as channel_graph
from tflottery.models.surgery import check_model
from tflottery.models.weights import inner, short_name, transparent, weight_variables
from tflottery.pruning import targets as targets_lib
from tflottery.pruning.schedule import IMPSchedule

with tfmot.sparsity.keras.prune_scope():  # tfmot's wrapper class, through its public API
    PruneLowMagnitude = keras.utils.get_registered_object("PruneLowMagnitude")
transparent(PruneLowMagnitude)

CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def layer_kind(layer) -> "str | None":
    """'dense' or 'conv' for the layers a tfmot wrapper masks (a Dense or Conv kernel); other targets are
    masked by variable (`VariableMask`)."""
    if isinstance(layer, keras.layers.Dense):
        return "dense"
    if isinstance(layer, CONV_TYPES) and not isinstance(layer, (keras.layers.DepthwiseConv2D,
                                                                  keras.layers.SeparableConv2D)):
        return "conv"
    return None


def prunable_kinds(model: keras.Model, patterns: "list | tuple" = ()) -> dict:
    """{path: rate kind} of every prunable variable (`tflottery.pruning.targets`), in model order (the last is the
    output layer's): "fc1/kernel", "mha/query/kernel", "lstm/lstm_cell/recurrent_kernel"; `patterns`: pruning.prune's
    choice instead (`targets.select`)."""
    return targets_lib.select([inner(layer) for layer in model.layers], patterns)[0]


def uncovered(model: keras.Model, patterns: "list | tuple" = ()) -> dict:
    """{layer name: what it holds} of every layer with weights no rule prunes: trainable matrices (rank >= 2)
    of a layer no registered kind describes (`tflottery.extend.register_layer_kind` adds one), unless `patterns`
    (pruning.prune) choose them or take them out by name."""
    layers = [inner(layer) for layer in model.layers]
    chosen, out = targets_lib.select(layers, patterns)
    return targets_lib.uncovered_layers(layers, {**chosen, **out})


def kernel_shapes(model: keras.Model, patterns: "list | tuple" = ()) -> dict:
    """{path: shape} of the prunable variables."""
    variables = weight_variables(model)
    return {k: tuple(int(d) for d in variables[k].shape) for k in prunable_kinds(model, patterns)}


def plan_inputs(model: keras.Model, patterns: "list | tuple" = (), channels: bool = False) -> dict:
    """What a plan needs of `model` (`patterns`: pruning.prune): its targets' kinds and shapes, the layers no rule
    covers, the targets a "!pattern" takes out, and how many trainable weights lie outside the targets (biases,
    scales, layers left dense: what "of all weights" adds to "of the prunable weights"); with `channels`, its
    channel graph (`tflottery.models.channels.graph`)."""
    layers = [inner(layer) for layer in model.layers]
    kinds, excluded = targets_lib.select(layers, patterns)
    variables = weight_variables(model)
    return {"kinds": kinds, "shapes": {k: tuple(int(d) for d in variables[k].shape) for k in kinds},
            "uncovered": targets_lib.uncovered_layers(layers, {**kinds, **excluded}),
            "dense_weights": sum(int(np.prod(v.shape)) for k, v in variables.items() if v.trainable and k not in kinds),
            "excluded": excluded, "graph": channel_graph(model, kinds) if channels else None}


def wrapped(model: keras.Model, prune: list) -> "tuple[list, list]":
    """(layer names a tfmot wrapper masks, variable paths a `VariableMask` masks) of `prune`: target paths, or
    layer names (then the layer's every target)."""
    layers = {inner(layer).name: inner(layer) for layer in model.layers}
    defaults = set(prunable_kinds(model))
    keys = [k for k in weight_variables(model) if k in prune or (k in defaults and k.split("/")[0] in prune)]
    by_wrapper = [layer_of(k) for k in keys if is_layer_kernel(k) and layer_kind(layers[layer_of(k)])]
    return by_wrapper, [k for k in keys if k.split("/")[0] not in by_wrapper]


class VariableMask:
    """Keeps a variable's pruned weights at exactly zero: its constraint, which tf_keras optimizers apply after
    every update (`apply_gradients`, and the engine's tower steps). The mask is a variable of its own, so a new
    level's mask needs no new program. For targets no tfmot wrapper holds (attention, recurrent, embedding).
    `kept`: the survivor fraction of each level where `prune_imp` schedules it in a user's own fit."""

    kept = None

    def __init__(self, variable):
        self.mask = tf.Variable(tf.ones(variable.shape, variable.dtype), trainable=False,
                                name=short_name(variable) + "_mask")

    def __call__(self, weight):
        return weight * self.mask


def mask_by_variable(variable) -> VariableMask:
    """`variable` under a `VariableMask` (all ones until `set_masks`), its constraint: the variable's own, not
    the layer's config, so a saved model carries none of it. A constraint of the user's is refused."""
    current = variable.constraint
    if isinstance(current, VariableMask):
        return current
    if current is not None:
        raise ModelError(f"Weight {variable.name} has a constraint ({type(current).__name__}); tflottery keeps its "
                         "mask with a constraint of its own: remove that one, or leave the layer dense (--unpruned).")
    constraint = VariableMask(variable)
    variable._constraint = constraint  # tf.Variable has no setter; the optimizers read `.constraint`
    return constraint


@keras.saving.register_keras_serializable(package="tflottery")
class FrozenMaskWrapper(PruneLowMagnitude):
    """tfmot's `PruneLowMagnitude` for a level of IMP, where the mask never changes while training.

    It holds the same mask/threshold/step variables and strips with `strip_pruning`, but its
    call skips tfmot's per-step bookkeeping (step counter, schedule query in a `tf.cond`): the
    schedule would always answer "do not prune". Instead the forward pass uses weight x mask,
    so no training loop can revive a pruned weight.
    """

    zeros_kept = False  # True: the trainer keeps pruned weights at zero itself (see `call`)

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self._name = f"prune_low_magnitude_{layer.name}"  # tfmot names wrappers after their class
        self._takes_training = "training" in inspect.getfullargspec(layer.call).args

    def build(self, input_shape):
        super().build(input_shape)
        by_id = {id(value): name for name, value in vars(self.layer).items() if isinstance(value, tf.Variable)}
        self._masked_attrs = [(by_id[id(w)], w, m) for w, m, _ in self.pruning_vars]

    def call(self, inputs, training=None, **kwargs):
        if self._takes_training:
            kwargs["training"] = training
        originals = [(attr, getattr(self.layer, attr)) for attr, _, _ in self._masked_attrs]
        apply = _masked_gradient if self.zeros_kept else _masked
        for attr, weight, mask in self._masked_attrs:  # bypass Keras' attribute tracking: a tensor for one call
            object.__setattr__(self.layer, attr, apply(weight, tf.cast(mask, weight.dtype)))
        try:
            return self.layer.call(inputs, **kwargs)
        finally:
            for attr, value in originals:
                object.__setattr__(self.layer, attr, value)


def _masked(weight, mask):
    return weight * mask


@tf.custom_gradient
def _masked_gradient(weight, mask):
    """weight x mask where pruned weights are zero already: the forward pass reads the weight as it is
    (bit for bit weight x mask, since a pruned weight is +-0 and +-0 x 0 is the same +-0) and the
    gradient is masked exactly as that of weight x mask, without a pass through memory per step."""
    return tf.identity(weight), lambda upstream: (upstream * mask, None)


@keras.saving.register_keras_serializable(package="tflottery")
class MaskedModel(keras.Model):
    """The model class of tflottery 0.2's loaded tickets, kept only so that their saved files reload."""


def custom_objects() -> dict:
    """The Keras classes a tflottery model is made of, registered so that saved models reload.

    Importing this module registers them under their plain names too (legacy .h5 files store
    those): `tf_keras.models.load_model(path)` then reloads a `ModelCheckpoint` of a ticket.
    """
    return {"FrozenMaskWrapper": FrozenMaskWrapper, "MaskedModel": MaskedModel, "IMPSchedule": IMPSchedule,
            "PruneLowMagnitude": PruneLowMagnitude}


def wrap(model: keras.Model, prune: "list[str] | None" = None) -> keras.Model:
    """A Functional copy of `model` whose targets named in `prune` (paths or layer names; default: every
    prunable variable) are masked: Dense and Conv kernels by frozen-mask wrappers, other targets by a
    `VariableMask`; it shares its layers' variables with `model`; masks start all-ones."""
    check_model(model)
    names, by_variable = wrapped(model, list(prunable_kinds(model)) if prune is None else list(prune))
    variables = weight_variables(model)
    for path in by_variable:
        mask_by_variable(variables[path])
    if not names:  # nothing to wrap (a model built by code has no config to clone): masked in place
        return model

    def clone(layer):
        if layer.name in names and not isinstance(layer, PruneLowMagnitude):
            return frozen_mask(layer)
        return layer

    cloned = keras.models.clone_model(model, clone_function=clone)
    return keras.Model(cloned.inputs, cloned.outputs, name=model.name)


def frozen_mask(layer, zeros_kept: bool = False) -> "FrozenMaskWrapper":
    """`layer` in a frozen-mask wrapper (its mask all ones until `set_masks`); `zeros_kept`: for a trainer
    that keeps pruned weights at zero itself (the forward pass then skips weight x mask)."""
    wrapper = FrozenMaskWrapper(layer, pruning_schedule=IMPSchedule())
    wrapper.zeros_kept = zeros_kept
    return wrapper


def strip(model: keras.Model) -> keras.Model:
    """The plain Functional model (no wrappers) with the masked weights: what is saved and deployed."""
    stripped = tfmot.sparsity.keras.strip_pruning(model)
    return keras.Model(stripped.inputs, stripped.outputs, name=stripped.name)


def mask_variables(model: keras.Model) -> dict:
    """{path: mask variable} of the model's masked targets: its wrappers' and its `VariableMask`s', in model order."""
    wrappers = {f"{layer.layer.name}/kernel": m for layer in model.layers if isinstance(layer, PruneLowMagnitude)
                for _, m, _ in layer.pruning_vars}
    return {path: wrappers.get(path, getattr(v.constraint, "mask", None)) for path, v in weight_variables(model).items()
            if path in wrappers or isinstance(v.constraint, VariableMask)}


def get_masks(model: keras.Model) -> dict:
    return {k: m.numpy().astype(bool) for k, m in mask_variables(model).items()}


def set_masks(model: keras.Model, masks: dict) -> None:
    """Write boolean masks into the wrappers and zero the pruned weights at once."""
    variables, weights = mask_variables(model), weight_variables(model)
    for name, mask in masks.items():
        if name not in variables:
            raise ModelError(f"Mask {name!r} has no pruned layer in the model; pruned: {sorted(variables)}.")
        if tuple(variables[name].shape) != tuple(mask.shape):
            raise ModelError(f"Mask {name!r} has shape {tuple(mask.shape)}, the layer {tuple(variables[name].shape)}.")
        variables[name].assign(np.asarray(mask, np.float32))
        weights[name].assign(weights[name] * variables[name])


keras.utils.get_custom_objects().update(custom_objects())
