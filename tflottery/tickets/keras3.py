"""Tickets in Keras 3 (`keras`, the TensorFlow or JAX backend): the same verified ticket, rebuilt layer by layer.

`load_ticket(path, keras=3)` reads the ticket with the safe reader (the same allowlist and
refusals: nothing in a ticket runs code), rebuilds each allowlisted layer as its Keras 3 class
from its plain settings (units, filters, kernel size, strides, padding, activation, ...), wires
them as the ticket's graph, and sets the ticket's weights. Each pruned kernel carries a
`TicketMask` constraint, which Keras 3 optimizers apply after every update (`apply`, and
`stateless_apply` on JAX), so pruned weights are exactly zero after every step of any `fit`,
whatever the optimizer (weight decay included). `TicketMask` is registered serializable:
`model.save("x.keras")` and `keras.models.load_model` round-trip once tflottery is imported.
"""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from tflottery.core.errors import TicketError

# Settings each Keras 3 layer class takes from a tf_keras config; everything else (initialisers, which the
# ticket's weights replace; tf_keras-only keys) is left behind.
_COMMON = ("name", "trainable", "dtype")
_SETTINGS = {
    "Dense": ("units", "activation", "use_bias"),
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
    "Add": (), "Concatenate": ("axis",), "Reshape": ("target_shape",), "Rescaling": ("scale", "offset"),
    "ZeroPadding2D": ("padding", "data_format"),
}


def _keras():
    import keras

    return keras


def mask_constraint_class():
    """TicketMask, defined (and registered) on first use so that importing tflottery never imports Keras 3."""
    keras = _keras()
    registered = keras.saving.get_registered_object("tflottery>TicketMask")
    if registered is not None:
        return registered

    @keras.saving.register_keras_serializable(package="tflottery")
    class TicketMask(keras.constraints.Constraint):
        """Keeps a kernel's pruned weights at exactly zero: applied by the optimizer after every update."""

        def __init__(self, mask):
            self.mask = np.asarray(mask, bool)

        def __call__(self, w):
            return w * keras.ops.cast(self.mask, w.dtype)

        def get_config(self):
            return {"shape": list(self.mask.shape),
                    "bits": base64.b64encode(np.packbits(self.mask.ravel()).tobytes()).decode("ascii")}

        @classmethod
        def from_config(cls, config):
            shape = tuple(int(d) for d in config["shape"])
            size = int(np.prod(shape))
            bits = np.unpackbits(np.frombuffer(base64.b64decode(config["bits"]), np.uint8))[:size]
            return cls(bits.astype(bool).reshape(shape))

    return TicketMask


def load_ticket(path: "str | Path", weights: str = "trained", trust_code: bool = False):
    """A ticket as a Keras 3 Functional model (logits out), its masks enforced in any `fit` (see the module)."""
    from tflottery.tickets.read import read_ticket

    ticket = read_ticket(path, trust_code)
    source = ticket.build(weights)
    model = rebuild(source, ticket.masks, Path(path))
    set_weights(model, _weights_of(source), Path(path))
    return model


def _weights_of(model) -> dict:
    from tflottery.models.weights import get_weights

    return get_weights(model)


def rebuild(source, masks: dict, where: Path):
    """The Keras 3 model of a (verified) tf_keras Functional or Sequential `source`, masks as constraints."""
    keras = _keras()
    config = source.get_config()
    layers = config["layers"]
    tensors: dict = {}
    inputs, outputs = [], []
    TicketMask = mask_constraint_class()
    for spec in layers:
        cls, cfg = spec["class_name"], spec["config"]
        name = cfg["name"]
        if cls == "InputLayer":
            shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
            tensors[name] = keras.Input(batch_shape=tuple(shape), dtype=_dtype(cfg.get("dtype")), name=name)
            inputs.append(tensors[name])
            continue
        if cls not in _SETTINGS:
            raise TicketError(f"{where}: layer {name!r} is a {cls}, which tflottery does not rebuild in Keras 3 yet "
                              f"(it rebuilds {', '.join(sorted(_SETTINGS))}); load it with load_ticket(path) in "
                              "tf_keras.")
        kwargs = {k: cfg[k] for k in _SETTINGS[cls] + _COMMON if k in cfg}
        kwargs["dtype"] = _dtype(kwargs.get("dtype"))
        kernel = f"{name}/kernel" if cls != "DepthwiseConv2D" else f"{name}/depthwise_kernel"
        if kernel in masks:
            kwargs["depthwise_constraint" if cls == "DepthwiseConv2D" else "kernel_constraint"] = TicketMask(masks[kernel])
        layer = getattr(keras.layers, cls)(**kwargs)
        previous = _inbound(spec, config, layers)
        args = [tensors[n] for n in previous]
        tensors[name] = layer(args if cls in ("Add", "Concatenate") else args[0])
    if config.get("output_layers"):
        outputs = [tensors[o[0]] for o in config["output_layers"]]
        inputs = [tensors[i[0]] for i in config["input_layers"]]
    else:  # Sequential: the last layer's output
        outputs = [tensors[layers[-1]["config"]["name"]]]
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs,
                       name=config.get("name") or source.name)


def _inbound(spec: dict, config: dict, layers: list) -> list:
    """The names of the layers feeding `spec` (Functional: its inbound node; Sequential: the one before)."""
    nodes = spec.get("inbound_nodes")
    if nodes:
        node = nodes[0]
        if isinstance(node, dict):  # newer tf_keras spelling
            return [arg["config"]["keras_history"][0] for arg in node.get("args", []) if isinstance(arg, dict)]
        return [entry[0] for entry in node]
    index = layers.index(spec)
    return [layers[index - 1]["config"]["name"]]


def _dtype(value):
    if isinstance(value, dict):  # a tf_keras mixed-precision policy: its name
        return value.get("config", {}).get("name", "float32")
    return value or "float32"


def set_weights(model, weights: dict, where: Path) -> None:
    """Every weight of the Keras 3 `model` from tflottery's {"<layer>/<variable>": array}."""
    for layer in model.layers:
        for variable in layer.weights:
            key = f"{layer.name}/{variable.path.split('/')[-1]}"
            if key not in weights:
                raise TicketError(f"{where}: the Keras 3 rebuild has weight {key!r}, which the ticket does not hold "
                                  f"(it holds {sorted(weights)[:6]}).")
            variable.assign(np.asarray(weights[key], variable.dtype))
