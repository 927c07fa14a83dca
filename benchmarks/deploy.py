"""Deployment: unstructured against block-IMP tickets of LeNet-300-100 in LiteRT, side by side in one run.

Finds (or reuses, under --runs_dir) four IMP runs on Fashion-MNIST (the embedded MNIST sample
when Debian's files are absent): unstructured layerwise and global, block-global 1x4 (TFLite's
float sparse kernel) and block 1x16 in fc1 (its int8 kernel; fc2 and the output, whose input
sizes are not multiples of 16, pruned weight by weight). At about 21%, 10% and 5% remaining it
converts each ticket (dense float, its sparse encoding, int8) and measures every file in the
same process: test accuracy, top-1 agreement with its Keras ticket, size raw and gzipped, and
latency per example under the default interpreter (XNNPACK) and the builtin kernels, each
against the dense float file of the same ticket (median of interleaved rounds).
Run: python benchmarks/deploy.py [--steps 3ep] [--runs_dir benchmarks/runs]
"""
import argparse
import os
from pathlib import Path

os.environ.setdefault("TFLOTTERY_OFFLINE", "1")
import tflottery  # noqa: E402,F401
from tflottery import convert, export_ticket  # noqa: E402
from tflottery.config import RunConfig  # noqa: E402
from tflottery.data import DEBIAN_DIRS  # noqa: E402
from tflottery.api import find_ticket  # noqa: E402

LEVELS = (7, 10, 13)  # about 21%, 11% and 5.5% remaining
RUNS = {  # name: (pruning config, conversion modes of its tickets)
    "unstructured": ({}, ["sparse", "int8"]),
    "unstructured global": ({"strategy": "global"}, ["sparse"]),
    "block global 1x4": ({"strategy": "global", "structure": {"block": [1, 4]}}, ["block_float", "int8"]),
    "block 1x16 (fc1)": ({"structure": {"block": [1, 16], "unstructured": ["fc2", "output"]}}, ["block_int8"]),
}


def main(steps: str, runs_dir: str) -> None:
    dataset = "fashion_mnist" if (DEBIAN_DIRS["fashion_mnist"] / "train-images-idx3-ubyte.gz").exists() else "mnist"
    rows = []
    for name, (pruning, modes) in RUNS.items():
        config = RunConfig.from_dict({"data": {"dataset": dataset}, "pruning": pruning,
                                      "plan": {"levels": max(LEVELS), "branches": []},
                                      "training": {"steps": steps, "eval_every": steps, "verbose": False},
                                      "runs_dir": runs_dir})
        run = find_ticket(config)
        for level in LEVELS:
            ticket = export_ticket(run, level, Path(runs_dir) / "tickets" / f"{name.replace(' ', '_')}-{level}",
                                   overwrite=True)
            report = convert(ticket, modes=["float", *modes])
            dense = report["files"]["float"]
            for mode, record in report["files"].items():
                rows.append({"ticket": name, "remaining": 100 * report["remaining"], "mode": mode,
                             "keras": 100 * report["keras_accuracy"], "accuracy": 100 * record["accuracy"],
                             "agreement": 100 * record["top1_agreement"], "kb": record["bytes"] / 1024,
                             "gz_kb": record["gzip_bytes"] / 1024,
                             "default": dense["latency_ms"] / record["latency_ms"],
                             "builtin": dense["latency_ms"] / record["latency_ms_builtin"],
                             "us": 1000 * min(record["latency_ms"], record["latency_ms_builtin"]),
                             "kernels": ", ".join(sorted({op["kernel"] for op in record["ops"] if op["weights"] != "-"})),
                             "ok": "yes" if record["ok"] else "rejected", "notes": "; ".join(record["notes"])})
    print(f"LeNet-300-100 on {dataset}, {steps} per level, one seed; speed = dense float latency / this file's "
          f"latency (higher is faster), under the default interpreter and under the builtin kernels\n")
    print("| ticket | remaining | mode | accuracy % (Keras) | agree % | KB | gzip KB | speed default | speed builtin | "
          "best us/example | kernels | ok |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(f"| {r['ticket']} | {r['remaining']:.1f}% | {r['mode']} | {r['accuracy']:.2f} ({r['keras']:.2f}) | "
              f"{r['agreement']:.1f} | {r['kb']:.0f} | {r['gz_kb']:.0f} | {r['default']:.2f}x | {r['builtin']:.2f}x | "
              f"{r['us']:.1f} | {r['kernels']} | {r['ok']} |")
    notes = {f"{r['ticket']} {r['remaining']:.1f}% {r['mode']}": r["notes"] for r in rows if r["notes"]}
    if notes:
        print("\nnotes:")
        for key, text in notes.items():
            print(f"  {key}: {text}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="3ep")
    parser.add_argument("--runs_dir", default=str(Path(__file__).parent / "runs"))
    args = parser.parse_args()
    main(args.steps, args.runs_dir)
