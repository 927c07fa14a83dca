"""What a model's masks are on: prunable variables, found by walking its layers, named by their path.

A pruning target is one variable of one layer, named `<layer>/<sublayer>/.../<variable>` (`fc1/kernel`,
`mha/query/kernel`, `lstm/lstm_cell/recurrent_kernel`), the names `tflottery.models.weights` stores
weights under. Which variables of a layer are prunable, and the rate kind they take, is the layer
kinds registry below, looked up along the layer's class hierarchy (a subclass of `Dense` is a `Dense`),
the same in tf_keras and Keras 3 (their classes share names and attributes). A layer inside a
container kind (`MultiHeadAttention`'s four `EinsumDense` projections) takes the container's rate kind.

Following the field's defaults: every weight matrix and kernel is prunable (Frankle & Carbin prune
every layer, Yu et al. 2020 an LSTM's embeddings and kernels); biases and normalisation scales
never are. Chen et al. 2020 leave BERT's embeddings dense: `--embedding_rate=0` (or `--unpruned`)
does that here, and says so in the start line.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass

from tflottery.core.errors import ConfigError
from tflottery.core.names import layer_of, matches
from tflottery.models.weights import child_names, own_variables, short_name
from tflottery.pruning.strategies.base import KINDS  # the rate kinds (layerwise: --<kind>_rate)


@dataclass(frozen=True)
class LayerKind:
    """A layer class's prunable variables (attribute names; "a|b" where the libraries spell it two ways) and the
    rate kind they take."""

    variables: tuple
    kind: str


LAYER_KINDS: dict = {}
CONTAINERS: dict = {}  # layer class name -> the rate kind of every target inside it


def register_layer_kind(cls: "type | str", variables: "tuple | list", kind: str) -> None:
    """Make `variables` (attribute names, e.g. ("kernel",)) of layer class `cls` (or its name) prunable at the
    rate of `kind` (one of KINDS): a user's own layer, pruned as the built-in ones are."""
    name = cls if isinstance(cls, str) else cls.__name__
    if kind not in KINDS:
        raise ConfigError(f"register_layer_kind({name!r}, kind={kind!r}): the kind is one of {', '.join(KINDS)}.")
    if not variables or not all(isinstance(v, str) and v for v in variables):
        raise ConfigError(f"register_layer_kind({name!r}): give the attribute names of its prunable variables, "
                          "e.g. ('kernel',).")
    LAYER_KINDS[name] = LayerKind(tuple(variables), kind)


for _name in ("Dense", "EinsumDense"):
    register_layer_kind(_name, ("kernel",), "dense")
for _name in ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
    register_layer_kind(_name, ("kernel",), "conv")
for _name in ("DepthwiseConv1D", "DepthwiseConv2D"):
    register_layer_kind(_name, ("depthwise_kernel|kernel",), "conv")  # Keras 3 calls it `kernel`
for _name in ("SeparableConv1D", "SeparableConv2D"):
    register_layer_kind(_name, ("depthwise_kernel", "pointwise_kernel"), "conv")
register_layer_kind("Embedding", ("embeddings",), "embedding")
for _name in ("LSTMCell", "GRUCell", "SimpleRNNCell"):
    register_layer_kind(_name, ("kernel", "recurrent_kernel"), "recurrent")
CONTAINERS["MultiHeadAttention"] = "attention"


def kind_of(layer) -> "LayerKind | None":
    """The registered kind of `layer`'s class, or of the nearest registered class it derives from."""
    for cls in type(layer).__mro__:
        if cls.__name__ in LAYER_KINDS:
            return LAYER_KINDS[cls.__name__]
    return None


def walk(layer, path: str, container: "str | None" = None):
    """(path, variable, rate kind or None, layer) of every variable of `layer` and its sublayers, depth first."""
    kind = kind_of(layer)
    prunable = {}
    if kind is not None:
        prunable = {id(getattr(layer, spelling)): container or kind.kind for a in kind.variables
                    for spelling in a.split("|") if getattr(layer, spelling, None) is not None}
    for variable in own_variables(layer):
        yield f"{path}/{short_name(variable)}", variable, prunable.get(id(variable)), layer
    inner_kind = next((CONTAINERS[c.__name__] for c in type(layer).__mro__ if c.__name__ in CONTAINERS), container)
    for name, sub in child_names(layer):
        yield from walk(sub, f"{path}/{name}", inner_kind)


def default_targets(layers) -> dict:
    """{path: rate kind} of the registered prunable variables of `layers` (a model's top-level layers, wrappers
    unwrapped), in model order: the last is the output layer's."""
    return {path: kind for layer in layers for path, _, kind, _ in walk(layer, layer.name) if kind is not None}


def uncovered_layers(layers, targets: dict) -> dict:
    """{top-level layer name: what it holds} of layers holding trainable matrices (rank >= 2) of a layer no
    registered kind describes (a user's own, a nested model's). A registered kind decides all its variables (an
    attention head's [heads, dim] bias, a GRU's [2, 3 units] bias stay dense by design); vectors and biases
    never count."""
    out = {}
    for layer in layers:
        sizes = [_size(v) for path, v, _, owner in walk(layer, layer.name)
                 if path not in targets and _uncovered(v, owner)]
        if sizes:
            out[layer.name] = f"{type(layer).__name__}, {sum(sizes):,} weights"
    return out


def _uncovered(variable, owner) -> bool:
    """A trainable matrix no registered kind decides on (biases never count)."""
    return variable.trainable and len(variable.shape) >= 2 and kind_of(owner) is None \
        and not short_name(variable).endswith("bias")


def _size(variable) -> int:
    return math.prod(int(d) for d in variable.shape)


def select(layers, patterns=()) -> "tuple[dict, dict]":
    """({path: rate kind} of the targets `patterns` choose, {path: weights} of those a "!pattern" takes out), in
    model order. No pattern: every registered kind's targets. A pattern naming a layer (or a glob over layer
    names) chooses that layer's registered targets; a path or a glob over paths chooses those variables,
    whatever they are (a variable no kind describes takes the dense rate)."""
    if not patterns:
        return default_targets(layers), {}
    found = [(path, v, kind, owner) for layer in layers for path, v, kind, owner in walk(layer, layer.name)]
    registered = {path for path, _, kind, _ in found if kind is not None}
    trainable = {path: kind or "dense" for path, v, kind, _ in found if v.trainable}
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]
    for pattern in include + exclude:
        if not any(matches(path, pattern) for path in trainable):
            raise ConfigError(f"pruning.prune: {pattern!r} names no trainable weight of the model (its layers: "
                              f"{', '.join(dict.fromkeys(layer_of(p) for p in trainable))}); give a layer name, a "
                              "weight path such as 'fc1/kernel', or a glob such as '*/kernel'.")
    chosen = {path: kind for path, kind in trainable.items()
              if path in registered and not include or any(_chooses(path, p, path in registered) for p in include)}
    out = {path: _size(v) for path, v, kind, owner in found
           if (path in chosen or kind is None and _uncovered(v, owner)) and any(matches(path, p) for p in exclude)}
    return {path: kind for path, kind in chosen.items() if path not in out}, out


def _chooses(path: str, pattern: str, registered: bool) -> bool:
    if path == pattern or ("/" in pattern and fnmatch.fnmatchcase(path, pattern)):
        return True  # a path, or a glob over paths: that variable, whatever it is
    return registered and fnmatch.fnmatchcase(layer_of(path), pattern)  # a layer: its registered targets
