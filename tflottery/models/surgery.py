"""What the engine asks of a model's architecture: checks, the output layer swap, and its digest.

`check_model` refuses, before any training, the models whose masks or loss cannot be right:
subclassed models, nested models and shared layers (a mask per layer could not follow them),
layer names that cannot be stored, and an output that is not logits (the engine trains with
the logits loss; a softmax or sigmoid output would train silently wrong).
"""
from __future__ import annotations

import hashlib

from tflottery.core.errors import ModelError
from tflottery.core.keras_compat import keras, require_tf_keras
from tflottery.models.weights import inner

PROBABILITY_ACTIVATIONS = {"softmax", "sigmoid"}
STOCHASTIC = ("Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout")  # layers that draw while training


def check_model(model: keras.Model) -> keras.Model:
    """`model` if tflottery can prune and train it; else one ModelError naming the problem and the fix."""
    from tflottery.models.built import BuiltModel, Keras3Network

    if isinstance(model, Keras3Network):  # the user's Keras 3 code: trained by the Keras 3 trainer
        return model
    require_tf_keras(model)
    if isinstance(model, BuiltModel):  # one instance of the user's code: its variables are addressed by path
        return model
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise ModelError(f"Model {model.name!r} nests the model(s) {nested}: masks are kept per layer of one model. "
                         "Flatten it: build one Functional model from the inner models' layers.")
    calls = _calls(model) if not isinstance(model, keras.Sequential) else {}
    shared = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)
              and (calls.get(layer.name, 1) if calls else _uses(model, layer)) > 1]
    if shared:
        raise ModelError(f"Model {model.name!r} uses the layer(s) {shared} more than once: one mask cannot follow "
                         "a shared layer. Give each use its own layer.")
    bad = [layer.name for layer in model.layers if "__" in layer.name or "/" in layer.name]
    if bad:
        raise ModelError(f"Layer name(s) {bad} contain '__' or '/', which tflottery uses to store weights by "
                         "name: rename the layer(s), e.g. name='fc_1'.")
    if len(model.outputs) != 1:
        raise ModelError(f"Model {model.name!r} has {len(model.outputs)} outputs: tflottery trains classifiers with "
                         "one output of logits.")
    activation = output_activation(model)
    if activation in PROBABILITY_ACTIVATIONS:
        raise ModelError(f"Model {model.name!r} ends in a {activation}: tflottery trains logits (the loss is "
                         "SparseCategoricalCrossentropy(from_logits=True)), so a probability output would train "
                         "silently wrong. Remove the final activation (activation=None); exported tickets serve "
                         "probabilities as their own signature.")
    return model


def _uses(model: keras.Model, layer) -> int:
    """How often `layer` is called inside `model` (its inbound nodes in the model's own config)."""
    if isinstance(layer, keras.layers.InputLayer):
        return 1
    if isinstance(model, keras.Sequential):
        return sum(1 for other in model.layers if other is layer)
    uses = _calls(model)
    return uses.get(layer.name, 1)


def _calls(model: keras.Model) -> dict:
    layers = model.get_config().get("layers", [])
    return {entry["name"]: len(entry.get("inbound_nodes", [])) for entry in layers if "name" in entry}


def output_activation(model: keras.Model) -> "str | None":
    """The name of the activation the output passes last, if a layer applies one (softmax, sigmoid, ...)."""
    layer = inner(model.layers[-1])
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    return None if name in (None, "linear") else name


def check_fits(model: keras.Model, data) -> None:
    outputs = model.output_shape[-1] if len(model.outputs) == 1 else None
    if outputs != data.num_classes:
        raise ModelError(f"Model {model.name!r} has {outputs} outputs but {data.info['dataset']} "
                         f"{'with labels ' + str(data.info['labels']) + ' ' if data.info.get('labels') else ''}has "
                         f"{data.num_classes} classes: give the output layer {data.num_classes} units.")
    if tuple(model.input_shape[1:]) != tuple(data.input_shape):
        raise ModelError(f"Model {model.name!r} takes inputs of shape {tuple(model.input_shape[1:])}, but "
                         f"{data.info['dataset']} has {tuple(data.input_shape)}.")


def with_head(model: keras.Model, classes: int, seed: int) -> keras.Model:
    """`model` with its Dense output layer replaced by one of `classes` units (Gaussian Glorot, seeded). A network
    built by code keeps its output layer inside: a fresh copy of it, for as many classes as it has."""
    from tflottery.models.built import BuiltModel, Keras3Network
    from tflottery.models.init import fresh_weights
    from tflottery.models.weights import set_weights

    if isinstance(model, (BuiltModel, Keras3Network)):
        if classes != int(model.output_shape[-1]):
            raise ModelError(f"{model.name} is built by your code, which holds its output layer of "
                             f"{int(model.output_shape[-1])} classes: transfer it to as many classes, or give the code "
                             f"a head of {classes} (a new run).")
        fresh = model.copy()
        set_weights(fresh, fresh_weights(model, seed))
        return fresh
    out_layer = model.layers[-1]
    if not isinstance(out_layer, keras.layers.Dense) or len(model.outputs) != 1:
        raise ModelError(f"Cannot swap the head of {model.name!r}: its last layer {out_layer.name!r} is not a "
                         "Dense output layer.")
    config = dict(out_layer.get_config(), units=classes,
                  kernel_initializer={"class_name": "GlorotNormal", "config": {"seed": seed}})
    head = keras.layers.Dense.from_config(config)
    return keras.Model(model.inputs, head(out_layer.input), name=model.name)


def architecture_digest(model: keras.Model) -> str:
    return hashlib.sha256(model.to_json().encode()).hexdigest()[:12]


def stochastic_layers(model: keras.Model) -> list:
    """Layers whose training draws random numbers (dropout, noise): units of such a model train alone. By class
    name, so that Keras 3 layers count too."""
    top = [layer.name for layer in model.layers if _draws(inner(layer))]
    nested = [f"{layer.name}/{sub.name}" for layer in model.layers if not _draws(inner(layer))
              for sub in inner(layer)._flatten_layers(include_self=False, recursive=True)
              if _draws(sub) and (getattr(sub, "rate", 0) or getattr(sub, "stddev", 0))]
    return top + nested


def _draws(layer) -> bool:
    return any(cls.__name__ in STOCHASTIC for cls in type(layer).__mro__)
