"""LiteRT: load a .tflite file as a phone would, run it, and compare it with its Keras model."""
from __future__ import annotations

import gzip
import statistics
import time
from pathlib import Path

import numpy as np


RESOLVERS = ("default", "builtin")  # the default interpreter (XNNPACK applied) / builtin kernels, no delegate


def interpreter(blob_or_path, batch: int = 1, resolver: str = "default"):
    """An interpreter with tensors allocated: `default` as on a phone (default op resolver and delegate,
    XNNPACK), or `builtin` (BUILTIN_WITHOUT_DEFAULT_DELEGATES: TFLite's own kernels, sparse ones included)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {"model_content": blob_or_path} if isinstance(blob_or_path, bytes) else {"model_path": str(blob_or_path)}
    if resolver == "builtin":
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
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


def fixed_batch(path) -> "int | None":
    """The batch a file is fixed to (a recurrent model's, converted at batch 1), or None when it is open."""
    from ai_edge_litert.interpreter import Interpreter

    signature = Interpreter(model_path=str(path)).get_input_details()[0].get("shape_signature")
    return int(signature[0]) if signature is not None and len(signature) and signature[0] > 0 else None


def outputs(path: Path, x: np.ndarray, batch: int, resolver: str) -> np.ndarray:
    """Logits of every example of `x` (full batches, then one interpreter for the rest; a file fixed to a batch
    runs at its batch)."""
    batch = fixed_batch(path) or batch
    full = len(x) // batch * batch
    parts = []
    if full:
        batched = interpreter(path, batch, resolver)
        parts += [run(batched, x[i:i + batch]) for i in range(0, full, batch)]
    if full < len(x):
        parts.append(run(interpreter(path, len(x) - full, resolver), x[full:]))
    return np.concatenate(parts)


def latencies(path: Path, x, runs: int = 300, rounds: int = 5) -> dict:
    """Per resolver, the median latency per example (ms) of each of `rounds` interleaved rounds."""
    runners = {r: interpreter(path, 1, r) for r in RESOLVERS}
    for runner in runners.values():
        for i in range(10):
            run(runner, x[i:i + 1])
    times = {r: [] for r in RESOLVERS}
    for _ in range(rounds):
        for name, runner in runners.items():
            samples = []
            for i in range(runs // rounds):
                start = time.perf_counter()
                run(runner, x[i % len(x):i % len(x) + 1])
                samples.append(time.perf_counter() - start)
            times[name].append(1000 * statistics.median(samples))
    return times


MARGIN = 0.10  # one way is faster only when every round of it beats every round of the other by this much


def faster(rounds: dict) -> str:
    """"default" or "builtin" when their rounds separate by MARGIN (the slowest round of one under the
    fastest of the other), else "either": single timings on a shared machine flip from run to run."""
    default, builtin = rounds["default"], rounds["builtin"]
    if max(default) < (1 - MARGIN) * min(builtin):
        return "default"
    if max(builtin) < (1 - MARGIN) * min(default):
        return "builtin"
    return "either"


def measure(path: Path, x, y, reference, tuned_model=None, batch: int = 250, latency_runs: int = 300,
            layer_names: tuple = ()) -> dict:
    """Size, accuracy and agreement with the Keras model (or the fine-tuned one) under both resolvers,
    latency under both (the median of 5 interleaved rounds, and the rounds), the faster one where the
    rounds separate, and which kernel runs each op (of which of `layer_names`)."""
    blob = path.read_bytes()
    ref = reference if tuned_model is None else tuned_model.predict(x, batch_size=500, verbose=0)
    out = {"file": str(path), "bytes": len(blob), "gzip_bytes": len(gzip.compress(blob, 9)),
           "compared_with": "fine-tuned Keras model" if tuned_model is not None else "Keras ticket",
           "examples": int(len(x)), "finite": True}
    for resolver in RESOLVERS:
        logits = outputs(path, x, batch, resolver)
        suffix = "" if resolver == "default" else "_builtin"
        finite = bool(np.isfinite(logits).all())
        out["finite"] = out["finite"] and finite
        same = (logits.argmax(1) == ref.argmax(1)) & np.isfinite(logits).all(axis=1)  # NaN never agrees
        out[f"accuracy{suffix}"] = None if y is None else float(((logits.argmax(1) == y) & np.isfinite(logits).all(
            axis=1)).mean())
        out[f"top1_agreement{suffix}"] = float(same.mean())
        out[f"max_logit_diff{suffix}"] = float(np.abs(logits - ref).max()) if finite else None
    timing = latencies(path, x, latency_runs)
    out["latency_ms"], out["latency_ms_builtin"] = (statistics.median(timing[r]) for r in RESOLVERS)
    out["latency_rounds_ms"] = timing
    out["ops"] = op_report(blob, layer_names)
    out["faster"] = faster(timing)
    out["sparse_kernel"] = any(op["kernel"].startswith("builtin sparse") for op in out["ops"])
    return out


def op_report(blob: bytes, layer_names: "tuple | list" = ()) -> list[dict]:
    """Per op: the Keras layer it computes (of `layer_names`, read from the converter's tensor names), its
    kind, how its weights are stored (dense, sparse, sparse in r x c blocks), and which kernel runs it
    under the default interpreter (XNNPACK, or a builtin kernel, sparse or dense)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(blob, 0)
    graph = model.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    producer = {t: i for i, op in enumerate(graph.operators) for t in op.outputs}
    delegated = _delegated(blob, producer, graph)
    rows = []
    for i, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        weighted = kind in WEIGHTED and len(op.inputs) > 1 and op.inputs[1] >= 0
        weight = graph.tensors[op.inputs[1]] if weighted else None
        storage = "-" if weight is None else _storage(weight)
        if i in delegated:
            kernel = "XNNPACK (dense)"
        else:
            kernel = f"builtin {'sparse' if storage.startswith('sparse') else 'dense'}"
        tensors = [graph.tensors[t] for t in ([op.inputs[1]] if weighted else []) + list(op.outputs)]
        rows.append({"op": i, "layer": _layer_of(tensors, layer_names), "kind": kind, "weights": storage,
                     "weight_type": None if weight is None else schema_type(weight.type), "kernel": kernel})
    return rows


def _layer_of(tensors: list, layer_names) -> "str | None":
    """The first of `layer_names` that is a path component of the tensors' names ("model/fc1/MatMul;...")."""
    known = set(layer_names)
    for tensor in tensors:
        name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name or "")
        for part in name.split(";"):
            for component in part.split("/"):
                if component in known:
                    return component
    return None


WEIGHTED = {"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_3D", "TRANSPOSE_CONV"}


def schema_type(code: int) -> str:
    from ai_edge_litert import schema_py_generated as schema

    return {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}.get(code, str(code)).lower()


def _storage(tensor) -> str:
    sparsity = tensor.sparsity
    if sparsity is None:
        return "dense"
    block = list(sparsity.blockMap) if sparsity.blockMap is not None else []
    if not block:
        return "sparse"
    sizes = [d.denseSize for d in sparsity.dimMetadata[len(sparsity.dimMetadata) - len(block):]]
    shape = [1] * len(tensor.shape)
    for axis, size in zip(block, sizes):
        shape[axis] = size
    return "sparse, blocks " + "x".join(map(str, shape))


def _delegated(blob: bytes, producer: dict, graph) -> set:
    """Original ops that the default delegate took over: those inside a DELEGATE node's partition."""
    runner = interpreter(blob, 1, "default")
    detail = runner.get_input_details()[0]
    runner.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    runner.invoke()
    native = runner._interpreter
    originals = len(graph.operators)
    taken = set()
    for node in range(originals, native.NumNodes()):
        inputs = set(native.NodeInputs(node))
        stack = [producer[t] for t in native.NodeOutputs(node) if t in producer]
        while stack:
            op = stack.pop()
            if op in taken:
                continue
            taken.add(op)
            stack += [producer[t] for t in graph.operators[op].inputs if t in producer and t not in inputs]
    return taken
