"""Fine-tuning before conversion: prune-preserving QAT, and block sparsity at the ticket's own sparsity."""
from __future__ import annotations

import numpy as np

from tflottery.core.errors import ConversionError


def _need_train(train, mode: str):
    if train is None:
        raise ConversionError(f"Mode {mode} fine-tunes the ticket and needs its training data, which a "
                              "--representative file does not provide; load the ticket's dataset here.")


def prune_preserving_qat(plain, masks: dict, train, steps: int):
    import tensorflow_model_optimization as tfmot

    from tflottery.core.keras_compat import keras
    from tflottery.models.weights import get_weights

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
