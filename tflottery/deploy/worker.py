"""The conversion itself (run in a subprocess by `tflottery.deploy.convert`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np

import tflottery  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow loads, also in the subprocess)
from tflottery.deploy.checks import ERROR_PREFIX, check_blocks, divisor_of, representative_arrays
from tflottery.deploy.converter import convert_checked
from tflottery.deploy.modes import MODES
from tflottery.deploy.verify import measure
from tflottery.core.errors import ConfigError, ConversionError, TflotteryError
from tflottery.core.names import is_layer_kernel
from tflottery.core.files import atomic_write, write_json


def convert_ticket(ticket: str, modes: list, representative: Optional[str], qat_steps: int, out: Optional[str],
                   finetune_steps: int, min_agreement: float = 0.95, trust_code: bool = False) -> dict:
    from tflottery.tickets import read_ticket

    verified = read_ticket(ticket, trust_code)
    meta, masks = verified.meta, verified.masks
    out_dir = Path(out) if out else Path(ticket) / "tflite"
    anchor = Path(ticket) if not out else out_dir  # the ticket's tflite/ is opened from the ticket: never a link
    plain = verified.build("trained")
    x_eval, y_eval, x_cal, train = _data(meta, representative, plain.input_shape[1:])
    reference = plain.predict(x_eval, batch_size=500, verbose=0)
    report = {"ticket": str(ticket), "remaining": meta["remaining"]["total"],
              "remaining_of_all": (meta.get("weights") or {}).get("remaining_of_all"), "eval_examples": int(len(x_eval)),
              "keras_accuracy": None if y_eval is None else float((reference.argmax(1) == y_eval).mean()),
              "files": {}}
    from tflottery.pruning.resolve import deploy_note

    found, warning = deploy_note(meta["pruning"]) or ("", None)
    if warning:
        print(f"[tflottery] warning: the ticket was found {found}{warning}", flush=True)
    beyond = [k for k in masks if not is_layer_kernel(k)]
    if beyond:  # embeddings, attention, recurrent kernels
        report["sparse_kernels_cover"] = ("LiteRT's sparse kernels run fully connected and convolution layers only: "
                                          f"the masks of {', '.join(beyond)} make the file smaller (sparse encoding, "
                                          "gzip), not faster")
        print(f"[tflottery] note: {report['sparse_kernels_cover']}", flush=True)
    from tflottery.deploy.converter import recurrent

    if recurrent(plain):
        report["batch"] = "fixed at 1: LiteRT fuses recurrent layers only at a fixed batch"
    for mode in modes:
        kind = MODES[mode]
        notes = [f"warning: {warning}"] if warning and kind.sparse else []
        source = kind.prepare(plain, masks, train, qat_steps)
        if kind.block:
            widths = check_blocks(masks, kind.block, mode)
            loose = [k.split("/")[0] for k, w in widths.items() if w % kind.block]
            if loose:
                notes.append(f"{', '.join(loose)} not in 1x{kind.block} blocks: no block kernel for "
                             f"{'it' if len(loose) == 1 else 'them'}")
        print(f"[tflottery] {mode}: converting", flush=True)
        blob, converted = convert_checked(source, mode, x_cal, x_eval)
        notes += converted
        path = atomic_write(out_dir / f"{mode}.tflite", blob, anchor)
        record = measure(path, x_eval, y_eval, reference, source if source is not plain else None,
                         layer_names=[layer.name for layer in plain.layers])
        if not record["sparse_kernel"] and kind.sparse:
            notes.append("no sparse kernel ran: under the default interpreter XNNPACK computes every layer densely"
                         if not any(op["kernel"].startswith("builtin sparse") for op in record["ops"]) else "")
        notes = [n for n in notes if n]
        record["ok"] = record["top1_agreement"] >= min_agreement and record["finite"]
        if not record["finite"]:
            notes.append("the file computes NaN or infinite outputs: not deployable")
        if not record["ok"]:
            rejected = path.with_name(f"{mode}.rejected.tflite")
            path.replace(rejected)
            record["file"] = str(rejected)
            notes.append(f"REJECTED: top-1 agreement {record['top1_agreement']:.3f} < {min_agreement}; "
                         "kept as .rejected.tflite for inspection, not for deployment")
            print(f"[tflottery] {mode}: agreement {record['top1_agreement']:.3f} < {min_agreement}: rejected", flush=True)
        record["notes"] = notes
        report["files"][mode] = record
        print(summary(mode, record), flush=True)
    dense = report["files"].get("float")
    for record in report["files"].values():
        if dense:
            record["size_vs_float"] = record["bytes"] / dense["bytes"]
            record["latency_vs_float"] = record["latency_ms"] / dense["latency_ms"]
    write_json(out_dir / "convert.json", report, anchor)
    return report


def summary(mode: str, record: dict) -> str:
    """One line per file: size raw and gzipped, accuracy, agreement, latency under both resolvers, the
    faster one (where their timings separate), the kernels."""
    kernels = sorted({op["kernel"] for op in record["ops"] if op["weights"] != "-"})
    faster = {"builtin": "builtin kernels (no delegate)", "default": "the default interpreter",
              "either": "either (their timings overlap)"}[record["faster"]]
    accuracy = "" if record.get("accuracy") is None else f"accuracy {100 * record['accuracy']:5.2f}%  "
    text = (f"[tflottery] {mode:<11} {record['bytes'] / 1024:7.1f} KB ({record['gzip_bytes'] / 1024:.1f} KB gzipped)  "
            f"{accuracy}agreement {100 * record['top1_agreement']:5.1f}%  "
            f"{1000 * record['latency_ms']:6.1f} us default, {1000 * record['latency_ms_builtin']:6.1f} us builtin: "
            f"run it with {faster}; weights run on {', '.join(kernels)}")
    return text + ("" if record["sparse_kernel"] or not MODES[mode].sparse else " (no sparse kernel ran)")


def _data(meta: dict, representative: Optional[str], input_shape=()):
    """(x_eval float, y_eval or None, calibration images float, training data or None)."""
    from tflottery import data as data_lib
    from tflottery.core.errors import DataUnavailableError
    from tflottery.tickets import ticket_config

    if representative:
        x, y = representative_arrays(representative, tuple(input_shape), len(meta.get("class_names") or []) or None,
                                     divisor_of(meta))
        return x, y, x[:200], None
    config = ticket_config(meta)
    try:
        dataset = data_lib.load(config.data, config.training.batch_size)
    except (DataUnavailableError, ConfigError) as error:
        own = str((meta.get("data") or {}).get("source", "")).startswith("arrays:")
        raise ConversionError(f"The ticket's dataset cannot be loaded here for int8 calibration and evaluation "
                              f"({'it trained on arrays given in Python' if own else error}). Pass "
                              f"--representative=FILE.npz with an array x of "
                              + ("its inputs as your arrays hold them" if own else "uint8 images")
                              + " (and y for accuracy).") from None
    x, y = dataset.arrays["test"]
    x_train = dataset.arrays["train"][0]
    calibration = x_train[np.random.default_rng(0).choice(len(x_train), min(500, len(x_train)), replace=False)]
    return x.astype(np.float32) / 255.0, y.astype(np.int64), calibration.astype(np.float32) / 255.0, dataset


if __name__ == "__main__":
    request_path, answer_path = sys.argv[1], sys.argv[2]
    try:
        report = convert_ticket(*json.loads(Path(request_path).read_text()))
    except TflotteryError as error:
        print(f"{ERROR_PREFIX}{error}", file=sys.stderr)
        sys.exit(3)
    Path(answer_path).write_text(json.dumps(report))
