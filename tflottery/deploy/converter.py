"""The TFLite converter, per mode, and the guarantee that a file it writes loads in LiteRT."""
from __future__ import annotations

import warnings

from tflottery.core.errors import ConversionError
from tflottery.deploy.modes import MODES
from tflottery.deploy.verify import interpreter


RECURRENT = ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional")


def recurrent(model) -> bool:
    """Whether `model` holds a recurrent layer: LiteRT fuses those into its sequence ops only at a fixed batch."""
    return any(type(layer).__name__ in RECURRENT for layer in model._flatten_layers(include_self=False))


def converter_blob(model, mode: str, x_cal, sparse: bool = True) -> bytes:
    """The TFLite file of `model` in `mode`; a model with recurrent layers at a batch of 1 (what a phone runs;
    TFLite lowers an LSTM with an open batch to TensorList ops its builtins lack)."""
    import tensorflow as tf

    kind = MODES[mode]
    if recurrent(model):
        run = tf.function(lambda x: model(x, training=False))
        concrete = run.get_concrete_function(tf.TensorSpec([1, *model.input_shape[1:]], tf.float32))
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    optimizations = []
    if kind.sparse and sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    if kind.int8:
        optimizations.append(tf.lite.Optimize.DEFAULT)
        if kind.calibrated:  # a quantization-aware model carries its own ranges
            def representative_dataset():
                for i in range(len(x_cal)):
                    yield [x_cal[i:i + 1]]

            converter.representative_dataset = representative_dataset
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.optimizations = optimizations
    try:
        with warnings.catch_warnings():  # "Statistics for quantized inputs were expected": float I/O by design
            warnings.simplefilter("ignore", UserWarning)
            return converter.convert()
    except Exception as error:  # noqa: BLE001 — the converter raises many types; name the cause
        message = str(error).strip().splitlines()
        raise ConversionError(f"TFLite cannot convert {model.name!r} in mode {mode}: "
                              f"{' '.join(message[:3])[:600]}. Unsupported layers must be replaced "
                              "with TFLite builtins (see the TFLite op compatibility guide).") from None


def convert_checked(model, mode: str, x_cal, x_check=None) -> tuple[bytes, list]:
    """Convert and prove the file loads with the default interpreter; fall back once, else refuse.

    int8 with unstructured sparse encoding is known to make XNNPACK fail at `allocate_tensors`,
    and LiteRT's sparse int8 kernel computes wrong results for 1x16 blocks over an input
    dimension that is not a multiple of 16 (docs/litert_sparse_int8.md): an int8 file with
    sparse weights is therefore checked against the same file densely encoded, on `x_check`.
    Either way the file is rebuilt without the sparse encoding, and why is recorded.
    """
    notes = []
    blob = converter_blob(model, mode, x_cal)
    try:
        interpreter(blob)
        problem = _sparse_int8_disagrees(model, mode, x_cal, x_check, blob)
        if problem is None:
            return blob, notes
        notes.append(problem)
    except Exception as error:  # noqa: BLE001
        if not MODES[mode].sparse:
            raise ConversionError(f"The dense {mode} file does not load in LiteRT: {error}") from None
        notes.append(f"sparse encoding failed in the default interpreter ({readable(error)}); "
                     "rebuilt without EXPERIMENTAL_SPARSITY")
    blob = converter_blob(model, mode, x_cal, sparse=False)
    try:
        interpreter(blob)
    except Exception as error:  # noqa: BLE001
        raise ConversionError(f"Mode {mode}: the file does not load in the default LiteRT interpreter even "
                              f"without sparse encoding ({error}); not written.") from None
    return blob, notes


def readable(error: Exception) -> str:
    """LiteRT's error text as one sentence: its messages run together ("node #3Node number 9 ...")."""
    import re

    text = re.sub(r"(?<=\S)(Node number)", r"; node number", str(error))
    return re.sub(r"\s+", " ", text).strip()[:200]


def _sparse_int8_disagrees(model, mode: str, x_cal, x_check, blob: bytes):
    """None when an int8 file's sparse kernels compute what its dense twin computes, else why not."""
    import numpy as np

    from tflottery.deploy.verify import op_report, run

    if not MODES[mode].int8 or x_check is None:
        return None
    if not any(op["weights"].startswith("sparse") for op in op_report(blob)):
        return None
    dense = converter_blob(model, mode, x_cal, sparse=False)
    sample = x_check[:1000]
    outputs = []
    for candidate in (blob, dense):
        runner = interpreter(candidate, len(sample), "builtin")
        outputs.append(run(runner, sample))
    agreement = float(np.mean(outputs[0].argmax(1) == outputs[1].argmax(1)))
    if agreement >= 0.999:
        return None
    return (f"LiteRT's sparse int8 kernel disagreed with the same file densely encoded on {100 * (1 - agreement):.1f}% "
            "of examples (a LiteRT bug for 1x16 blocks over an input dimension that is not a multiple of 16: "
            "docs/litert_sparse_int8.md); rebuilt without EXPERIMENTAL_SPARSITY")
