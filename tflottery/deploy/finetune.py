"""Fine-tuning before conversion: prune-preserving QAT, and block sparsity at the ticket's own sparsity."""
from __future__ import annotations

import numpy as np

from tflottery.errors import ConversionError


def _need_train(train, mode: str):
    if train is None:
        raise ConversionError(f"Mode {mode} fine-tunes the ticket and needs its training data, which a "
                              "--representative file does not provide; load the ticket's dataset here.")


def prune_preserving_qat(plain, masks: dict, train, steps: int):
    import tensorflow_model_optimization as tfmot

    from tflottery.keras_compat import keras
    from tflottery.pruning.wrap import get_weights

    _need_train(train, "int8_qat")
    scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    annotated = tfmot.quantization.keras.quantize_annotate_model(keras.models.clone_model(plain))
    annotated.set_weights(plain.get_weights())
    qat = tfmot.quantization.keras.quantize_apply(annotated, scheme)
    qat.compile(keras.optimizers.Adam(1e-4), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(train.train_pipeline(0, steps), steps_per_epoch=steps, epochs=1, verbose=0)
    check_zeros(get_weights(qat), masks, "prune-preserving QAT")
    return qat


def check_zeros(weights: dict, masks: dict, what: str) -> None:
    """Every pruned weight is still zero (quantize wrappers rename layers `quant_<name>`)."""
    for name, mask in masks.items():
        layer = name.split("/")[0]
        kernel = weights.get(f"quant_{layer}/kernel", weights.get(f"{layer}/kernel"))
        if kernel is None:
            raise ConversionError(f"{what}: no kernel for {layer} to check the mask against; refusing to convert.")
        if np.any(np.asarray(kernel)[~mask] != 0):
            raise ConversionError(f"{what} revived pruned weights of {layer}; refusing to convert.")


def block_sparse(plain, meta: dict, train, block: tuple, steps: int):
    """Fine-tune the ticket into block sparsity at its own per-layer sparsity (tfmot block pruning)."""
    import tensorflow_model_optimization as tfmot

    from tflottery.keras_compat import keras

    _need_train(train, "block")
    layers = meta["remaining"]
    model = keras.models.clone_model(plain)
    model.set_weights(plain.get_weights())

    def wrap(layer):
        key = f"{layer.name}/kernel"
        if key not in layers:
            return layer
        schedule = tfmot.sparsity.keras.ConstantSparsity(1.0 - layers[key], begin_step=0, frequency=10)
        # tfmot's blocks are for 2-D kernels; convolutions keep unstructured sparsity at their own level
        size = block if isinstance(layer, keras.layers.Dense) else (1, 1)
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule, block_size=size)

    pruned = keras.models.clone_model(model, clone_function=wrap)
    pruned.compile(keras.optimizers.Adam(1e-4), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(train.train_pipeline(1, steps), steps_per_epoch=steps, epochs=1, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(pruned)
