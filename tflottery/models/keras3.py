"""Models between tf_keras and Keras 3: the same graph of allowlisted layers, rebuilt in the other library.

`translate(model, to=3)` rebuilds a tf_keras Sequential or Functional model as a Keras 3
Functional model, and `translate(model, to=2)` a Keras 3 one as tf_keras, layer by layer from
each layer's plain settings (units, filters, kernel size, strides, padding, activation by name,
...): the allowlist below, the same both ways, so nothing of a model's config runs code and a
layer it does not know is refused by name. Weights keep tflottery's "<layer>/<variable>" names
in both libraries, so masks, rewind weights and tickets move between them.
"""
from __future__ import annotations

import numpy as np

from tflottery.core.errors import ModelError

# Settings each layer class takes from the other library's config; everything else (initialisers, which
# the weights replace; one library's own keys) is left behind.
COMMON = ("name", "trainable", "dtype")
SETTINGS = {
    "Dense": ("units", "activation", "use_bias"),
    "Conv1D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation",
               "use_bias"),
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation",
               "use_bias"),
    "DepthwiseConv2D": ("kernel_size", "strides", "padding", "data_format", "dilation_rate", "depth_multiplier",
                        "activation", "use_bias"),
    "Flatten": ("data_format",),
    "Activation": ("activation",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "Dropout": ("rate", "noise_shape", "seed"),
    "MaxPooling2D": ("pool_size", "strides", "padding", "data_format"),
    "AveragePooling2D": ("pool_size", "strides", "padding", "data_format"),
    "GlobalAveragePooling2D": ("data_format", "keepdims"),
    "GlobalMaxPooling2D": ("data_format", "keepdims"),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale"),
    "Add": (), "Concatenate": ("axis",), "Reshape": ("target_shape",), "Permute": ("dims",),
    "Rescaling": ("scale", "offset"),
    "ZeroPadding2D": ("padding", "data_format"),
    "Embedding": ("input_dim", "output_dim", "mask_zero"),
    "EinsumDense": ("equation", "output_shape", "bias_axes", "activation"),
    "LSTM": ("units", "activation", "recurrent_activation", "use_bias", "unit_forget_bias", "return_sequences",
             "go_backwards", "dropout", "recurrent_dropout"),
    "GRU": ("units", "activation", "recurrent_activation", "use_bias", "reset_after", "return_sequences",
            "go_backwards", "dropout", "recurrent_dropout"),
    "SimpleRNN": ("units", "activation", "use_bias", "return_sequences", "go_backwards", "dropout",
                  "recurrent_dropout"),
    "LayerNormalization": ("axis", "epsilon", "center", "scale"),
    "GlobalAveragePooling1D": ("data_format", "keepdims"),
    "GlobalMaxPooling1D": ("data_format", "keepdims"),
    "MultiHeadAttention": ("num_heads", "key_dim", "value_dim", "dropout", "use_bias", "output_shape",
                           "attention_axes"),
}
MERGING = ("Add", "Concatenate")  # layers called on a list of tensors
ATTENTION = "MultiHeadAttention"  # called on (query, value[, key]), and use_causal_mask


def keras3():
    import keras

    return keras


def is_keras3(model) -> bool:
    """Whether `model` is a Keras 3 model (`import keras`), without importing Keras 3 for anything else."""
    return hasattr(model, "stateless_call") and any(cls.__module__.startswith("keras.") for cls in type(model).__mro__)


def library(to: int):
    if to == 3:
        return keras3()
    if to == 2:
        from tflottery.core.keras_compat import keras

        return keras
    raise ModelError(f"to={to!r}: 2 (tf_keras) or 3 (Keras 3).")


def translate(source, to: int, kernel_constraints: "dict | None" = None, where: str = ""):
    """The model `source` (tf_keras or Keras 3, Sequential or Functional) rebuilt in Keras `to` with the same
    layers, names and weights; `kernel_constraints`: {"<layer>/kernel": constraint} for the rebuilt kernels."""
    target = library(to)
    where = where or f"model {source.name!r}"
    config = source.get_config()
    if "layers" not in config:
        raise ModelError(f"{where} is a subclassed model ({type(source).__name__}): tflottery moves Sequential and "
                         "Functional models between tf_keras and Keras 3 (it rebuilds them from their config).")
    layers = config["layers"]
    tensors: dict = {}
    inputs = []
    for index, spec in enumerate(layers):
        cls, cfg = spec["class_name"], spec["config"]
        name = cfg["name"]
        if cls == "InputLayer":
            shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
            tensors[name] = target.Input(batch_shape=tuple(shape), dtype=_dtype(cfg.get("dtype")), name=name)
            inputs.append(tensors[name])
            continue
        if cls not in SETTINGS:
            raise ModelError(f"{where}: layer {name!r} is a {cls}, which tflottery does not move between tf_keras and "
                             f"Keras 3 yet (it rebuilds {', '.join(sorted(SETTINGS))}).")
        kwargs = {k: cfg[k] for k in SETTINGS[cls] + COMMON if k in cfg}
        kwargs["dtype"] = _dtype(kwargs.get("dtype"))
        if cls == "BatchNormalization" and isinstance(kwargs.get("axis"), (list, tuple)) and len(kwargs["axis"]) == 1:
            kwargs["axis"] = kwargs["axis"][0]  # tf_keras keeps a list; Keras 3 takes one axis
        if not all(isinstance(kwargs.get(k, "linear"), str) for k in ("activation", "recurrent_activation")):
            raise ModelError(f"{where}: layer {name!r} has activation {kwargs['activation']!r}; tflottery moves "
                             "activations by name only (e.g. 'relu').")
        constraint = (kernel_constraints or {}).get(f"{name}/kernel")
        if constraint is not None:
            kwargs["kernel_constraint"] = constraint
        layer = getattr(target.layers, cls)(**kwargs)
        if not inputs and index == 0:  # a Sequential model declared without an InputLayer
            raise ModelError(f"{where} has no input shape: build it (or give it an Input) first.")
        if cls == ATTENTION:
            tensors[name] = layer(*[tensors[n] for n in _attention_inputs(spec, where)],
                                  use_causal_mask=_causal(spec))
            continue
        args = [tensors[n] for n in _inbound(spec, layers, index)]
        tensors[name] = layer(args if cls in MERGING else args[0])
    if config.get("output_layers"):
        outputs = [tensors[o[0]] for o in _entries(config["output_layers"])]
        inputs = [tensors[i[0]] for i in _entries(config["input_layers"])]
    else:  # Sequential: the last layer's output
        outputs = [tensors[layers[-1]["config"]["name"]]]
    model = target.Model(inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs,
                         name=config.get("name") or source.name)
    set_weights(model, get_weights(source), where)
    return model


def _entries(value: list) -> list:
    """Functional input/output layers as a list of [name, node, tensor] (Keras 3 flattens a single one)."""
    return [value] if value and isinstance(value[0], str) else value


def _inbound(spec: dict, layers: list, index: int) -> list:
    """The names of the layers feeding `spec` (Functional: its inbound node; Sequential: the one before)."""
    nodes = spec.get("inbound_nodes")
    if not nodes:
        return [layers[index - 1]["config"]["name"]]
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3 and newer tf_keras: {"args": [tensor or [tensors]], "kwargs": {}}
        return [t["config"]["keras_history"][0] for t in _tensors(node.get("args", []))]
    return [entry[0] for entry in node]  # tf_keras: [[name, node, tensor, kwargs], ...]


def _attention_inputs(spec: dict, where: str) -> list:
    """The layer names of an attention call's query, value and (if given apart) key, in that order: Keras 3 passes
    them as arguments, tf_keras the query as its argument and the others as keyword arguments. An attention mask
    given as a tensor is refused by name (a causal mask is a setting: use_causal_mask)."""
    node = spec["inbound_nodes"][0]
    if isinstance(node, dict):
        names = [t["config"]["keras_history"][0] for t in _tensors(node.get("args", []))]
        kwargs = node.get("kwargs", {})
        names += [t["config"]["keras_history"][0] for key in ("value", "key") for t in _tensors(kwargs.get(key))]
    else:
        kwargs = node[0][3] if len(node[0]) > 3 else {}
        names = [node[0][0]] + [kwargs[key][0] for key in ("value", "key") if isinstance(kwargs.get(key), list)]
    if kwargs.get("attention_mask") is not None or not 2 <= len(names) <= 3:
        raise ModelError(f"{where}: attention layer {spec['config']['name']!r} is called with "
                         f"{'an attention_mask tensor' if kwargs.get('attention_mask') is not None else len(names)} "
                         "(tflottery moves attention called on a query, a value and a key, masked causally or not).")
    return names


def _causal(spec: dict) -> bool:
    node = spec["inbound_nodes"][0]
    kwargs = node.get("kwargs", {}) if isinstance(node, dict) else (node[0][3] if len(node[0]) > 3 else {})
    return bool(kwargs.get("use_causal_mask", False))


def _tensors(value) -> list:
    if isinstance(value, dict):
        return [value] if "keras_history" in value.get("config", {}) else []
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    return []


def _dtype(value):
    if isinstance(value, dict):  # a dtype policy: its name
        return value.get("config", {}).get("name", "float32")
    return value or "float32"


def built_keras3(builder, input_shape: tuple):
    """The Keras 3 model `builder()` makes, called once on zeros of `input_shape`, its layers named by their place
    (`stable_names`); None when it makes no Keras 3 model (a tf_keras one is `tflottery.models.built`'s)."""
    instance = builder()
    if not is_keras3(instance):
        return None
    instance(np.zeros((1, *input_shape), "float32"))
    return stable_names(instance)


def stable_names(model):
    """`model`, a subclassed Keras 3 model's top-level layers renamed by their place among their siblings where
    Keras made their names up (`dense_7` -> `dense`, `dense_1`, ...: `tflottery.models.weights.child_names`), so
    that weight paths are the same in every instance and every process. A Functional or Sequential model's names
    are its config's, kept."""
    from tflottery.models.weights import child_names

    if not any(cls.__name__ in ("Functional", "Sequential") for cls in type(model).__mro__):
        for name, layer in child_names(model):
            if layer.name != name:
                layer.name = name
    return model


def weight_variables(model) -> dict:
    """{"<layer>/<variable>": variable} of a model of either library (top-level layers, as tickets hold them)."""
    if not is_keras3(model):
        from tflottery.models.weights import weight_variables as of_tf_keras

        return of_tf_keras(model)
    from tflottery.models.weights import variable_paths

    out = {}
    for layer in model.layers:
        for key, variable in variable_paths(layer, layer.name):
            if key in out and out[key] is not variable:
                raise ModelError(f"Two weights of model {model.name!r} are both named {key!r} (a nested model?): "
                                 "tflottery addresses weights as '<layer>/<variable>'.")
            out[key] = variable
    return out


def get_weights(model) -> dict:
    return {k: np.array(v) for k, v in weight_variables(model).items()}


def set_weights(model, weights: dict, where: str = "") -> None:
    """Every weight of `model` (either library) from tflottery's {"<layer>/<variable>": array}."""
    variables = weight_variables(model)
    if set(variables) != set(weights):
        raise ModelError(f"{where or model.name}: the weights do not match the model: missing "
                         f"{sorted(set(variables) - set(weights))[:5]}, unexpected {sorted(set(weights) - set(variables))[:5]}.")
    for key, variable in variables.items():
        dtype = getattr(variable.dtype, "as_numpy_dtype", variable.dtype)  # a tf.DType or a Keras 3 name
        variable.assign(np.asarray(weights[key], dtype))
