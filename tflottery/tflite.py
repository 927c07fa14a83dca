"""Convert a ticket to TFLite and prove every file right with the LiteRT interpreter.

Modes (each a `.tflite` file in `<ticket>/tflite/`):
  float         dense float32, the reference;
  sparse        float32 with `EXPERIMENTAL_SPARSITY` (sparse tensor encoding: a small file);
  int8          full-integer post-training quantization calibrated on the ticket's own data,
                sparse encoding kept where the default interpreter can run it;
  int8_qat      prune-preserving quantization-aware fine-tuning (tfmot's
                `Default8BitPrunePreserveQuantizeScheme`) before int8 conversion;
  block_float / block_int8
                the ticket fine-tuned into block sparsity ((4,1) float, (16,1) int8) at its own
                sparsity, so that sparse kernels can skip whole blocks (a speed-up, not only a
                smaller file).

Every file is loaded with the default interpreter (its default delegate, XNNPACK, included),
run over the test set, and compared with the Keras ticket: accuracy, top-1 agreement, max
logit difference, size raw and gzipped, median latency per example; all in `convert.json`.
int8 with unstructured sparse encoding is known to make XNNPACK fail at `allocate_tensors`:
when that happens the file is rebuilt without the sparse encoding and the fallback recorded;
a file that does not load is never kept.

The 2.21 converter leaks about 20 MB a call, so conversion runs in a subprocess
(`python -m tflottery.tflite`; `in_process=False`, the default) and its memory goes back
when the subprocess ends.
"""
from __future__ import annotations

import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery.config import ConfigError, TicketError

MODES = ("float", "sparse", "int8", "int8_qat", "block_float", "block_int8")
BLOCKS = {"block_float": (4, 1), "block_int8": (16, 1)}


class ConversionError(TicketError):
    """A ticket cannot be converted or its file does not run; the message says why and what to do."""


def convert(ticket: "str | Path", modes: "list[str] | tuple" = ("float", "sparse", "int8"),
            representative: Optional[str] = None, qat_steps: int = 0, block_sparse: bool = False,
            out: "str | Path | None" = None, finetune_steps: int = 300, min_agreement: float = 0.95,
            in_process: bool = False) -> dict:
    """Convert `ticket` in each mode, verify each file, write `convert.json`; return its contents.

    `representative`: an .npz with `x` (uint8 images, NHWC) and optionally `y`, used for int8
    calibration and evaluation when the ticket's own dataset cannot be loaded here.
    `qat_steps` > 0 adds `int8_qat`; `block_sparse` adds `block_float` and `block_int8`.
    A file whose top-1 agreement with its Keras model is below `min_agreement` is kept only as
    `<mode>.rejected.tflite` and marked `"ok": false`, so it is never mistaken for a deployable one.
    """
    modes = list(modes)
    if qat_steps and "int8_qat" not in modes:
        modes.append("int8_qat")
    if block_sparse:
        modes += [m for m in BLOCKS if m not in modes]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ConfigError(f"Unknown TFLite mode(s) {unknown}: choose from {', '.join(MODES)}.")
    if "int8_qat" in modes and qat_steps < 1:
        qat_steps = finetune_steps
    from tflottery.tickets import read_ticket

    read_ticket(ticket)  # verify checksums here, with a clear error, before any subprocess starts
    args = [str(ticket), modes, representative, qat_steps, str(out) if out else None, finetune_steps, min_agreement]
    if in_process:
        return _convert(*args)
    return _convert_in_subprocess(args)


def _convert_in_subprocess(args: list) -> dict:
    """Run `_convert` as `python -m tflottery.tflite`: independent of the caller's __main__
    (multiprocessing's spawn would re-run an unguarded user script), memory returned on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        request, answer = Path(tmp) / "args.json", Path(tmp) / "report.json"
        request.write_text(json.dumps(args))
        result = subprocess.run([sys.executable, "-m", "tflottery.tflite", str(request), str(answer)],
                                capture_output=True, text=True)
        if result.returncode == 0 and answer.exists():
            return json.loads(answer.read_text())
        lines = [line for line in result.stderr.strip().splitlines() if line.startswith("ConversionError: ")]
        if lines:
            raise ConversionError(lines[-1][len("ConversionError: "):])
        raise ConversionError(f"TFLite conversion failed in its subprocess (exit {result.returncode}):\n"
                              + "\n".join(result.stderr.strip().splitlines()[-15:]))


# --------------------------------------------------------------------------- the work (subprocess)
def _convert(ticket: str, modes: list, representative: Optional[str], qat_steps: int, out: Optional[str],
             finetune_steps: int, min_agreement: float = 0.95) -> dict:
    import tflottery  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow loads, also in the subprocess)
    from tflottery.runs import atomic_write, write_json
    from tflottery.tickets import load_ticket, read_ticket

    meta, masks, _ = read_ticket(ticket)
    out_dir = Path(out) if out else Path(ticket) / "tflite"
    model = load_ticket(ticket, weights="trained")
    from tflottery.pruning.wrap import strip

    plain = strip(model)
    x_eval, y_eval, x_cal, train = _data(meta, representative)
    reference = plain.predict(x_eval, batch_size=500, verbose=0)
    report = {"ticket": str(ticket), "remaining": meta["remaining"]["total"], "eval_examples": int(len(x_eval)),
              "keras_accuracy": None if y_eval is None else float((reference.argmax(1) == y_eval).mean()),
              "files": {}}
    for mode in modes:
        source = plain
        if mode == "int8_qat":
            source = _prune_preserving_qat(plain, masks, train, qat_steps)
        elif mode in BLOCKS:
            source = _block_sparse(plain, meta, train, BLOCKS[mode], finetune_steps)
        blob, notes = _convert_checked(source, mode, x_cal)
        path = atomic_write(out_dir / f"{mode}.tflite", blob)
        record = _measure(path, x_eval, y_eval, reference, source if source is not plain else None)
        record["ok"] = record["top1_agreement"] >= min_agreement
        if not record["ok"]:
            rejected = path.with_name(f"{mode}.rejected.tflite")
            path.replace(rejected)
            record["file"] = str(rejected)
            notes.append(f"REJECTED: top-1 agreement {record['top1_agreement']:.3f} < {min_agreement}; "
                         "kept as .rejected.tflite for inspection, not for deployment")
            print(f"[tflottery] {mode}: agreement {record['top1_agreement']:.3f} < {min_agreement}: rejected", flush=True)
        record["notes"] = notes
        report["files"][mode] = record
    dense = report["files"].get("float")
    for record in report["files"].values():
        if dense:
            record["size_vs_float"] = record["bytes"] / dense["bytes"]
            record["latency_vs_float"] = record["latency_ms"] / dense["latency_ms"]
    write_json(out_dir / "convert.json", report)
    return report


def _data(meta: dict, representative: Optional[str]):
    """(x_eval float, y_eval or None, calibration images float, training pipeline or None)."""
    from tflottery import data as data_lib
    from tflottery.data import DataUnavailableError
    from tflottery.tickets import ticket_config

    if representative:
        with np.load(representative, allow_pickle=False) as f:
            if "x" not in f.files:
                raise ConversionError(f"{representative} has no array 'x' (uint8 images, NHWC).")
            x = f["x"].astype(np.float32) / 255.0
            y = f["y"].astype(np.int64) if "y" in f.files else None
        return x, y, x[:200], None
    config = ticket_config(meta)
    try:
        dataset = data_lib.load(config.data, config.training.batch_size, config.seed)
    except DataUnavailableError as error:
        raise ConversionError(f"The ticket's dataset cannot be loaded here for int8 calibration and evaluation "
                              f"({error}). Pass --representative=FILE.npz with an array x of uint8 images "
                              "(and y for accuracy).") from None
    x, y = dataset.arrays["test"]
    x_train = dataset.arrays["train"][0]
    calibration = x_train[np.random.default_rng(0).choice(len(x_train), min(500, len(x_train)), replace=False)]
    return x.astype(np.float32) / 255.0, y.astype(np.int64), calibration.astype(np.float32) / 255.0, dataset


def _converter_blob(model, mode: str, x_cal, sparse: bool = True) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    optimizations = []
    if mode != "float" and sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    if "int8" in mode:
        optimizations.append(tf.lite.Optimize.DEFAULT)
        if mode != "int8_qat":  # a QAT model carries its own ranges
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


def _interpreter(blob_or_path, batch: int = 1):
    from ai_edge_litert.interpreter import Interpreter

    kwargs = {"model_content": blob_or_path} if isinstance(blob_or_path, bytes) else {"model_path": str(blob_or_path)}
    interpreter = Interpreter(**kwargs)  # the default op resolver and delegate (XNNPACK), as on a phone
    detail = interpreter.get_input_details()[0]
    if batch != detail["shape"][0]:
        interpreter.resize_tensor_input(detail["index"], [batch, *detail["shape"][1:]])
    interpreter.allocate_tensors()
    return interpreter


def _convert_checked(model, mode: str, x_cal) -> tuple[bytes, list]:
    """Convert and prove the file loads with the default interpreter; fall back once, else refuse."""
    notes = []
    blob = _converter_blob(model, mode, x_cal)
    try:
        _interpreter(blob)
        return blob, notes
    except Exception as error:  # noqa: BLE001
        if mode == "float":
            raise ConversionError(f"The dense float file does not load in LiteRT: {error}") from None
        notes.append(f"sparse encoding failed in the default interpreter ({str(error).splitlines()[0][:200]}); "
                     "rebuilt without EXPERIMENTAL_SPARSITY")
    blob = _converter_blob(model, mode, x_cal, sparse=False)
    try:
        _interpreter(blob)
    except Exception as error:  # noqa: BLE001
        raise ConversionError(f"Mode {mode}: the file does not load in the default LiteRT interpreter even "
                              f"without sparse encoding ({error}); not written.") from None
    return blob, notes


def _run(interpreter, x: np.ndarray) -> np.ndarray:
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    x_in = x
    if inp["dtype"] != np.float32:  # full-integer inputs: quantize with the file's own scale
        scale, zero = inp["quantization"]
        x_in = np.clip(np.round(x / scale + zero), np.iinfo(inp["dtype"]).min, np.iinfo(inp["dtype"]).max).astype(inp["dtype"])
    interpreter.set_tensor(inp["index"], x_in)
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])
    if out["dtype"] != np.float32:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y


def _measure(path: Path, x, y, reference, tuned_model=None, batch: int = 250, latency_runs: int = 200) -> dict:
    blob = path.read_bytes()
    interpreter = _interpreter(path, batch)
    n = len(x) // batch * batch
    logits = np.concatenate([_run(interpreter, x[i:i + batch]) for i in range(0, n, batch)])
    single = _interpreter(path, 1)
    for i in range(10):
        _run(single, x[i:i + 1])
    times = []
    for i in range(latency_runs):
        start = time.perf_counter()
        _run(single, x[i % len(x):i % len(x) + 1])
        times.append(time.perf_counter() - start)
    ref = reference[:n] if tuned_model is None else tuned_model.predict(x[:n], batch_size=500, verbose=0)
    return {"file": str(path), "bytes": len(blob), "gzip_bytes": len(gzip.compress(blob, 9)),
            "accuracy": None if y is None else float((logits.argmax(1) == y[:n]).mean()),
            "top1_agreement": float((logits.argmax(1) == ref.argmax(1)).mean()),
            "max_logit_diff": float(np.abs(logits - ref).max()),
            "latency_ms": 1000 * statistics.median(times), "compared_with": "fine-tuned Keras model"
            if tuned_model is not None else "Keras ticket"}


# --------------------------------------------------------------------------- fine-tuning modes
def _need_train(train, mode: str):
    if train is None:
        raise ConversionError(f"Mode {mode} fine-tunes the ticket and needs its training data, which a "
                              "--representative file does not provide; load the ticket's dataset here.")


def _prune_preserving_qat(plain, masks: dict, train, steps: int):
    import tensorflow_model_optimization as tfmot

    from tflottery.keras_compat import keras
    from tflottery.pruning.wrap import get_weights

    _need_train(train, "int8_qat")
    scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    annotated = tfmot.quantization.keras.quantize_annotate_model(keras.models.clone_model(plain))
    annotated.set_weights(plain.get_weights())
    qat = tfmot.quantization.keras.quantize_apply(annotated, scheme)
    qat.compile(keras.optimizers.Adam(1e-4), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(train.train_pipeline(0), steps_per_epoch=steps, epochs=1, verbose=0)
    _check_zeros(get_weights(qat), masks, "prune-preserving QAT")
    return qat


def _check_zeros(weights: dict, masks: dict, what: str) -> None:
    """Every pruned weight is still zero (quantize wrappers rename layers `quant_<name>`)."""
    for name, mask in masks.items():
        layer = name.split("/")[0]
        kernel = weights.get(f"quant_{layer}/kernel", weights.get(f"{layer}/kernel"))
        if kernel is None:
            raise ConversionError(f"{what}: no kernel for {layer} to check the mask against; refusing to convert.")
        if np.any(np.asarray(kernel)[~mask] != 0):
            raise ConversionError(f"{what} revived pruned weights of {layer}; refusing to convert.")


def _block_sparse(plain, meta: dict, train, block: tuple, steps: int):
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
    pruned.fit(train.train_pipeline(1), steps_per_epoch=steps, epochs=1, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(pruned)


if __name__ == "__main__":  # the subprocess side of `convert`
    request_path, answer_path = sys.argv[1], sys.argv[2]
    try:
        report = _convert(*json.loads(Path(request_path).read_text()))
    except (ConversionError, TicketError) as error:
        print(f"ConversionError: {error}", file=sys.stderr)
        sys.exit(3)
    Path(answer_path).write_text(json.dumps(report))
