"""Fresh initial weights for any architecture: its own initialisers, each given an explicit seed.

Used for the `reinit` baseline, for each replicate of a user's model, and for a new output
layer in transfer. Every initialiser of every layer gets `derive_seed(seed, layer, argument)`,
so the weights depend on the seed alone: never on global random state, never on what this
process built or trained before.
"""
from __future__ import annotations

from tflottery.core.seeds import derive_seed
from tflottery.core.keras_compat import keras
from tflottery.models.weights import get_weights


def reseeded(model: keras.Model, seed: int) -> keras.Model:
    """A copy of `model`'s architecture whose initialisers are re-seeded from `seed`."""
    def clone(layer):
        config = layer.get_config()
        for key, value in config.items():
            if key.endswith("_initializer") and isinstance(value, dict) and isinstance(value.get("config"), dict) \
                    and "seed" in value["config"]:
                value["config"]["seed"] = derive_seed(seed, 0, None, layer.name, key)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in copy.layers:
        if any(cls.__name__ == "MultiHeadAttention" for cls in type(layer).__mro__):
            reseed_projections(layer, seed)
    return copy


def reseed_projections(layer, seed: int) -> None:
    """A MultiHeadAttention hands one copy of its seeded initialiser to each of its four projections, so query,
    key, value and output would start identical: each projection's kernel is drawn again under a seed of its own
    path (the layer's initialiser class and settings)."""
    config = layer.get_config()["kernel_initializer"]
    for sub in layer._flatten_layers(include_self=False, recursive=True):
        kernel = getattr(sub, "kernel", None)
        if kernel is None or not isinstance(config, dict):
            continue
        settings = dict(config.get("config") or {}, seed=derive_seed(seed, 0, None, f"{layer.name}/{sub.name}",
                                                                     "kernel_initializer"))
        initializer = keras.initializers.get({"class_name": config["class_name"], "config": settings})
        kernel.assign(initializer(kernel.shape, kernel.dtype))


def fresh_weights(model: keras.Model, seed: int) -> dict:
    """{"<layer>/<variable>": array} of a freshly initialised copy of `model` (the model is not changed)."""
    from tflottery.models.built import BuiltModel, Keras3Network, fresh_built_weights

    if isinstance(model, Keras3Network):
        return model.fresh_weights(seed)
    if isinstance(model, BuiltModel):
        return fresh_built_weights(model, seed)
    return get_weights(reseeded(model, seed))
