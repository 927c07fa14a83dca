"""Channels of a network and what depends on them: the dependency graph that channel tickets prune and shrink.

A *channel* is one output of a Dense layer (a neuron) or of a convolution (a filter): a column of
its kernel, the last axis. Removing it removes the same index from what follows it, up to the
next layers that mix channels: a BatchNormalization's four vectors and a DepthwiseConv2D's
filter (which keep channels apart), and the consumers' input rows (a Dense kernel's rows, a
convolution's input axis); through a Flatten, a channel is its every spatial position (rows
`p * channels + c`, channels last). Activations, pooling, padding and dropout pass channels on.

A channel's group is {its producer, followers, consumers}. A producer whose outputs reach the
model's output (the logits), an `Add`, a `Concatenate`, a `Reshape` or any layer not listed above
is not channel-prunable here: its channels stay (`groups` leaves it out and `why_not` says why).
Residual `Add`s and `Concatenate` offsets are not handled yet.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tflottery.core.keras_compat import keras

PASS_THROUGH = ("Activation", "ReLU", "LeakyReLU", "ELU", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
                "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
                "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "ZeroPadding2D", "GaussianNoise")
FOLLOWERS = ("BatchNormalization", "DepthwiseConv2D")  # per-channel weights, channels kept apart
MIXERS = ("Dense", "Conv1D", "Conv2D", "Conv3D")  # consume every input channel; produce channels of their own
ZERO_AT_ZERO = (None, "linear", "relu", "tanh", "gelu", "elu", "selu", "swish", "silu", "relu6")


@dataclass
class Consumer:
    """A layer that reads the group's channels: its input rows of channel c are `rows(c)`."""

    name: str
    spatial: int = 1  # positions a Flatten between made of each channel (rows p * channels + c)

    def rows(self, channels: int, keep: np.ndarray) -> np.ndarray:
        """Indices of the consumer's input axis that the kept channels (`keep`, indices) occupy."""
        return (np.arange(self.spatial)[:, None] * channels + keep[None, :]).reshape(-1)


@dataclass
class Group:
    """One producer's channels and every layer that holds a slice of them."""

    producer: str
    channels: int
    followers: list = field(default_factory=list)  # BatchNormalization / DepthwiseConv2D layer names
    consumers: list = field(default_factory=list)  # [Consumer]


def kind(layer) -> str:
    return type(layer).__name__


def _is_mixer(layer) -> bool:
    return kind(layer) in MIXERS


def consumers_of(model: keras.Model) -> dict:
    """{layer name: [names of the layers its output feeds]} (a Sequential model is a chain)."""
    if isinstance(model, keras.Sequential):
        names = [layer.name for layer in model.layers]
        return {a: [b] for a, b in zip(names, names[1:])} | {names[-1]: []}
    out = {layer.name: [] for layer in model.layers}
    for entry in model.get_config()["layers"]:
        for node in entry.get("inbound_nodes", []):
            for inbound in (node if isinstance(node, list) else []):
                out[inbound[0]].append(entry["config"]["name"])
    return out


def groups(model: keras.Model) -> "tuple[dict, dict]":
    """({producer: Group} of every channel-prunable layer, {layer: why not} of the other mixers)."""
    layers = {layer.name: layer for layer in model.layers}
    feeds = consumers_of(model)
    outputs = set(model.output_names)
    found, refused = {}, {}
    for name, layer in layers.items():
        if not _is_mixer(layer):
            continue
        group = Group(name, int(layer.kernel.shape[-1]))
        why = _follow(name, feeds, layers, outputs, group, spatial=1)
        if why:
            refused[name] = why
        else:
            found[name] = group
    return found, refused


def _follow(name: str, feeds: dict, layers: dict, outputs: set, group: Group, spatial: int) -> "str | None":
    """Walk forward from `name`'s output, filling `group`; the reason the channels cannot be pruned, or None."""
    if name in outputs:
        return "its outputs are the model's outputs"
    if not feeds[name]:
        return "its outputs reach no layer"
    for nxt in feeds[name]:
        layer = layers[nxt]
        if _is_mixer(layer):
            group.consumers.append(Consumer(nxt, spatial))
            continue
        if kind(layer) == "Flatten":
            shape = layer.input_shape
            why = _follow(nxt, feeds, layers, outputs, group, spatial * int(np.prod(shape[1:-1])))
        elif kind(layer) in FOLLOWERS:
            if kind(layer) == "DepthwiseConv2D" and int(layer.depth_multiplier) != 1:
                return f"{nxt} (DepthwiseConv2D) multiplies its channels"
            if kind(layer) == "BatchNormalization" and layer.axis not in ([-1], [len(layer.input_shape) - 1]):
                return f"{nxt} normalises another axis than the channels"
            group.followers.append(nxt)
            why = _follow(nxt, feeds, layers, outputs, group, spatial)
        elif kind(layer) in PASS_THROUGH:
            why = _follow(nxt, feeds, layers, outputs, group, spatial)
        else:
            why = f"it feeds {nxt} ({kind(layer)}), whose channels tflottery does not follow yet"
        if why:
            return why
    return None


def graph(model: keras.Model, targets: "dict | list") -> dict:
    """{producer kernel: [[consumer kernel, spatial, input axis], ...]} of the channel groups whose producer and
    every consumer are pruning targets (`targets`: paths), as a structure follows them (JSON-ready)."""
    found, _ = groups(model)
    out = {}
    for name, group in found.items():
        readers = [[f"{c.name}/kernel", c.spatial, 0 if kind(model.get_layer(c.name)) == "Dense" else -2]
                   for c in group.consumers]
        if f"{name}/kernel" in targets and all(reader[0] in targets for reader in readers):
            out[f"{name}/kernel"] = readers
    return out


def kept_channels(group: Group, masks: dict, weights: dict, layers: dict) -> np.ndarray:
    """Indices of the group's channels that still matter: a channel goes when no consumer reads it (all its
    input rows masked), or when it is exactly zero (its kernel column masked, no bias or a masked-out one, and an
    activation that maps 0 to 0, with no follower that adds an offset)."""
    unread = np.ones(group.channels, bool)
    for consumer in group.consumers:
        mask = masks.get(f"{consumer.name}/kernel")
        if mask is None:
            unread[:] = False
            break
        unread &= ~_input_rows(mask).reshape(consumer.spatial, group.channels, -1).any(axis=(0, 2))
    silent = np.zeros(group.channels, bool)
    producer = layers[group.producer]
    mask = masks.get(f"{group.producer}/kernel")
    activation = getattr(getattr(producer, "activation", None), "__name__", None)
    if mask is not None and activation in ZERO_AT_ZERO and not group.followers:
        silent = ~mask.reshape(-1, group.channels).any(axis=0)
        bias = weights.get(f"{group.producer}/bias")
        if bias is not None:
            silent &= bias == 0
    return np.flatnonzero(~(unread | silent))


def _input_rows(mask: np.ndarray) -> np.ndarray:
    """A consumer kernel's mask as [input rows, everything else]: a Dense kernel is [in, out]; a convolution's
    input axis is its second last."""
    if mask.ndim == 2:
        return mask
    return np.moveaxis(mask, -2, 0).reshape(mask.shape[-2], -1)


@dataclass
class Shrunk:
    """A network made smaller by `shrink`: the model, its weights and masks, {producer: (channels before, after)},
    and the cuts in order, to cut other weights of the same network alike (`cut`: its rewind weights)."""

    model: keras.Model
    weights: dict
    masks: dict
    removed: dict
    slices: list

    def cut(self, arrays: dict) -> dict:
        out = dict(arrays)
        for path, axis, indices in self.slices:
            if path in out:
                out[path] = np.take(out[path], indices, axis=axis)
        return out


def shrink(model: keras.Model, weights: dict, masks: dict) -> Shrunk:
    """A smaller dense network computing what `model` at `weights` x `masks` computes: every channel that no longer
    matters (`kept_channels`) deleted from its producer, its followers and its consumers' inputs, repeated until
    none is left."""
    removed, slices = {}, []
    while True:
        found, _ = groups(model)
        layers = {layer.name: layer for layer in model.layers}
        cuts = {}
        for name, group in found.items():
            kept = kept_channels(group, masks, weights, layers)
            kept = kept if len(kept) else np.array([0])  # a layer keeps one channel (its consumers read none of it)
            if len(kept) < group.channels:
                cuts[name] = kept
                removed[name] = (removed.get(name, (group.channels,))[0], len(kept))
        if not cuts:
            return Shrunk(model, weights, masks, removed, slices)
        step = _slices(model, found, cuts)
        slices += step
        weights, masks = (Shrunk(model, {}, {}, {}, step).cut(arrays) for arrays in (weights, masks))
        model = _rebuilt(model, cuts, weights)


def _slices(model: keras.Model, found: dict, cuts: dict) -> list:
    """(variable path, axis, kept indices) of every array the cut channels run through."""
    out = []
    for name, kept in cuts.items():
        group = found[name]
        out += [(f"{name}/kernel", -1, kept), (f"{name}/bias", 0, kept)]
        for follower in group.followers:
            for variable in ("gamma", "beta", "moving_mean", "moving_variance", "bias"):
                out.append((f"{follower}/{variable}", 0, kept))
            out.append((f"{follower}/depthwise_kernel", -2, kept))
        for consumer in group.consumers:
            dense = kind(model.get_layer(consumer.name)) == "Dense"
            out.append((f"{consumer.name}/kernel", 0 if dense else -2, consumer.rows(group.channels, kept)))
    return out


def _rebuilt(model: keras.Model, cuts: dict, weights: dict) -> keras.Model:
    """`model`'s architecture with the cut layers' widths, at `weights`."""
    from tflottery.models.weights import set_weights

    config = model.get_config()
    entries = config["layers"] if isinstance(config, dict) and "layers" in config else config
    for entry in entries:
        settings = entry["config"]
        if settings.get("name") in cuts:
            settings["units" if entry["class_name"] == "Dense" else "filters"] = int(len(cuts[settings["name"]]))
    smaller = (keras.Sequential if isinstance(model, keras.Sequential) else keras.Model).from_config(config)
    set_weights(smaller, weights)
    return smaller
