"""LiteRT: load a .tflite file as a phone would, run it, and compare it with its Keras model."""
from __future__ import annotations

import gzip
import statistics
import time
from pathlib import Path

import numpy as np


def interpreter(blob_or_path, batch: int = 1):
    """The default interpreter (default op resolver and delegate, XNNPACK), tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter

    kwargs = {"model_content": blob_or_path} if isinstance(blob_or_path, bytes) else {"model_path": str(blob_or_path)}
    runner = Interpreter(**kwargs)
    detail = runner.get_input_details()[0]
    if batch != detail["shape"][0]:
        runner.resize_tensor_input(detail["index"], [batch, *detail["shape"][1:]])
    runner.allocate_tensors()
    return runner


def run(runner, x: np.ndarray) -> np.ndarray:
    """Logits for float images `x`, quantizing inputs and dequantizing outputs where the file is integer."""
    inp, out = runner.get_input_details()[0], runner.get_output_details()[0]
    x_in = x
    if inp["dtype"] != np.float32:
        scale, zero = inp["quantization"]
        info = np.iinfo(inp["dtype"])
        x_in = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
    runner.set_tensor(inp["index"], x_in)
    runner.invoke()
    y = runner.get_tensor(out["index"])
    if out["dtype"] != np.float32:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y


def measure(path: Path, x, y, reference, tuned_model=None, batch: int = 250, latency_runs: int = 200) -> dict:
    """Size, accuracy, agreement with the Keras model (or the fine-tuned one), and median latency."""
    blob = path.read_bytes()
    batched = interpreter(path, batch)
    n = len(x) // batch * batch
    logits = np.concatenate([run(batched, x[i:i + batch]) for i in range(0, n, batch)])
    single = interpreter(path, 1)
    for i in range(10):
        run(single, x[i:i + 1])
    times = []
    for i in range(latency_runs):
        start = time.perf_counter()
        run(single, x[i % len(x):i % len(x) + 1])
        times.append(time.perf_counter() - start)
    ref = reference[:n] if tuned_model is None else tuned_model.predict(x[:n], batch_size=500, verbose=0)
    return {"file": str(path), "bytes": len(blob), "gzip_bytes": len(gzip.compress(blob, 9)),
            "accuracy": None if y is None else float((logits.argmax(1) == y[:n]).mean()),
            "top1_agreement": float((logits.argmax(1) == ref.argmax(1)).mean()),
            "max_logit_diff": float(np.abs(logits - ref).max()),
            "latency_ms": 1000 * statistics.median(times),
            "compared_with": "fine-tuned Keras model" if tuned_model is not None else "Keras ticket"}
