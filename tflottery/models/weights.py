"""Weights by name: "<layer>/<variable>" (`fc1/kernel`, `bn1/gamma`) on plain and wrapped models alike.

Wrappers that only add state around a layer (tfmot's pruning wrapper, the supermask's
edge-popup layer) register themselves as `transparent`: their inner layer's weights keep the
inner layer's names, so masks and rewind weights move between wrapped and plain models. Two
variables that would get one name (a nested model, a layer twice) are an error, never a
silently lost weight.
"""
from __future__ import annotations

import re

import numpy as np

from tflottery.core.errors import ModelError
from tflottery.core.keras_compat import keras

TRANSPARENT: list = []  # wrapper classes whose `.layer` holds the real weights


def transparent(cls: type) -> type:
    """Register a wrapper class whose inner layer's weights are the model's (a class decorator)."""
    TRANSPARENT.append(cls)
    return cls


def inner(layer):
    return layer.layer if TRANSPARENT and isinstance(layer, tuple(TRANSPARENT)) else layer


def short_name(variable) -> str:
    """A variable's own name: "kernel" of "fc1/kernel:0" (tf_keras) or of path "fc1/kernel" (Keras 3)."""
    return variable.name.split("/")[-1].split(":")[0]


def sublayers(layer) -> list:
    """`layer`'s direct sublayers (an LSTM's cell, attention's projections), in the order it tracks them."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _snake(name: str) -> str:
    """A class name as Keras names its layers (`Conv2D` -> conv2d, `LSTMCell` -> lstm_cell)."""
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)).lower()


def child_names(layer) -> list:
    """[(name, sublayer)] of `layer`'s sublayers, as paths name them. A name Keras made up (its class in snake case,
    numbered by how many were made before in the process: `dense_7`) is renumbered by its place among its
    siblings (`dense`, `dense_1`, ...), so that the paths inside a subclassed model are the same in every process
    and every copy; names given by the code (`query`, `lstm_cell`, `encoder`) are kept."""
    out, seen = [], {}
    for sub in sublayers(layer):
        base = _snake(type(sub).__name__)
        name = sub.name
        if re.fullmatch(re.escape(base) + r"(_\d+)?", name):
            count = seen.get(base, 0)
            seen[base] = count + 1
            name = base if count == 0 else f"{base}_{count}"
        out.append((name, sub))
    return out


def own_variables(layer) -> list:
    """The variables `layer` creates itself (not its sublayers'), in the order `layer.weights` lists them."""
    inside = {id(v) for sub in sublayers(layer) for v in sub.weights}
    return [v for v in layer.weights if id(v) not in inside]


def variable_paths(layer, path: str):
    """(path, variable) of every variable of `layer` and of its sublayers, depth first: "<layer>/<variable>", and
    "<layer>/<sublayer>/<variable>" inside (`mha/query/kernel`, `lstm/lstm_cell/kernel`)."""
    for variable in own_variables(layer):
        yield f"{path}/{short_name(variable)}", variable
    for name, sub in child_names(layer):
        yield from variable_paths(sub, f"{path}/{name}")


def weight_variables(model: keras.Model) -> dict:
    """{"<layer>/<variable>": tf.Variable} for a plain or wrapped model, excluding wrappers' own state; a
    sublayer's variables by their path inside their layer ("mha/query/kernel"). A network that addresses its
    variables itself (`tflottery.models.built.Keras3Network`) answers for itself."""
    if hasattr(model, "variables_by_path"):
        return model.variables_by_path()
    out = {}
    for layer in model.layers:
        real = inner(layer)
        for name, v in variable_paths(real, real.name):
            if name in out and out[name] is not v:
                raise ModelError(f"Two weights of {model.name!r} would both be stored as {name!r} (a nested model or "
                                 "layers of one name): flatten the model into one Functional model with unique "
                                 "layer names.")
            out[name] = v
    return out


def get_weights(model: keras.Model) -> dict:
    return {k: np.array(v) for k, v in weight_variables(model).items()}


def set_weights(model: keras.Model, weights: dict, strict: bool = True) -> None:
    """Assign weights by name; with `strict`, names and shapes must match exactly."""
    variables = weight_variables(model)
    missing = set(variables) - set(weights)
    if strict and (missing or set(weights) - set(variables)):
        raise ModelError(f"Weights do not match the model: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(set(weights) - set(variables))[:5]}.")
    for name, value in weights.items():
        if name in variables:
            if tuple(variables[name].shape) != tuple(np.shape(value)):
                raise ModelError(f"Weight {name}: the model has shape {tuple(variables[name].shape)}, "
                                 f"the file has {tuple(np.shape(value))}.")
            variables[name].assign(value)
