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

    return keras.models.clone_model(model, clone_function=clone)


def fresh_weights(model: keras.Model, seed: int) -> dict:
    """{"<layer>/<variable>": array} of a freshly initialised copy of `model` (the model is not changed)."""
    from tflottery.models.built import BuiltModel, fresh_built_weights

    if isinstance(model, BuiltModel):
        return fresh_built_weights(model, seed)
    return get_weights(reseeded(model, seed))
