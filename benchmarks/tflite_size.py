"""TFLite size, accuracy and latency of LeNet-300-100 tickets at 100%, 21.1%, 7.0% and 3.6% remaining.

Finds the tickets with IMP (layerwise, dense 20%, output 10%; Fashion-MNIST from Debian's
files when present, else the embedded MNIST sample), converts each in float / sparse / int8,
and fine-tunes the ~90%-sparse ticket into block sparsity. Every file is verified with the
default LiteRT interpreter. Prints a markdown table: sizes raw and gzipped as ratios to the
dense float file and to the physical floor (4 bytes per remaining parameter for float, 1 for
int8), accuracy against the Keras ticket's, and latency against the dense float file.
Run: python benchmarks/tflite_size.py [--steps 1ep] [--runs_dir benchmarks/runs]
"""
import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TFLOTTERY_OFFLINE", "1")
import tflottery  # noqa: E402,F401
from tflottery import convert, export_ticket  # noqa: E402
from tflottery.config import RunConfig  # noqa: E402
from tflottery.data import DEBIAN_DIRS  # noqa: E402
from tflottery.engine.imp import find_ticket  # noqa: E402

LEVELS = {0: "100%", 7: "21.1%", 12: "7.0%", 15: "3.6%"}
BLOCK_LEVEL = 10  # 10.8% remaining: ~90% sparse


def main(steps: str, runs_dir: str) -> None:
    dataset = "fashion_mnist" if (DEBIAN_DIRS["fashion_mnist"] / "train-images-idx3-ubyte.gz").exists() else "mnist"
    config = RunConfig.from_dict({"data": {"dataset": dataset}, "plan": {"levels": 15, "branches": []},
                                  "training": {"steps": steps, "eval_every": steps, "verbose": False},
                                  "runs_dir": runs_dir})
    run = find_ticket(config)
    rows = []
    for level in sorted(set(LEVELS) | {BLOCK_LEVEL}):
        ticket = export_ticket(run, level, Path(runs_dir) / "tickets" / f"level_{level}", overwrite=True)
        modes = ["float", "sparse", "int8"] if level in LEVELS else ["float", "sparse"]
        report = convert(ticket, modes=modes, block_sparse=level == BLOCK_LEVEL, finetune_steps=500)
        masks = run.replicate(0).load_level(level).masks
        params = sum(int(m.sum()) for m in masks.values()) + 300 + 100 + 10  # surviving kernels + biases
        dense = report["files"]["float"]
        for mode, f in report["files"].items():
            floor = params * (1 if "int8" in mode else 4)
            rows.append({"level": level, "remaining": 100 * report["remaining"], "mode": mode, "kb": f["bytes"] / 1024,
                         "gz_kb": f["gzip_bytes"] / 1024, "vs_dense": f["bytes"] / dense["bytes"],
                         "gz_vs_dense": f["gzip_bytes"] / dense["bytes"], "vs_floor": f["bytes"] / floor,
                         "gz_vs_floor": f["gzip_bytes"] / floor, "acc": 100 * f["accuracy"],
                         "keras_acc": 100 * report["keras_accuracy"], "agree": 100 * f["top1_agreement"],
                         "latency_vs_dense": f["latency_ms"] / dense["latency_ms"], "latency_us": 1000 * f["latency_ms"],
                         "ok": "yes" if f["ok"] else "rejected", "notes": "; ".join(f["notes"])[:60]})
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    (Path(runs_dir) / "tflite_size.json").write_text(json.dumps(rows, indent=1))
    print(f"LeNet-300-100 tickets on {dataset} ({run.data.info['source']}), {steps} per level\n")
    print("| remaining | mode | KB | gzip KB | size / dense float (raw, gz) | size / floor (raw, gz) | "
          "accuracy % (Keras) | top-1 agree % | latency / dense float | ok |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['remaining']:.1f}% | {r['mode']} | {r['kb']:.0f} | {r['gz_kb']:.0f} | "
              f"{r['vs_dense']:.3f}, {r['gz_vs_dense']:.3f} | {r['vs_floor']:.2f}, {r['gz_vs_floor']:.2f} | "
              f"{r['acc']:.2f} ({r['keras_acc']:.2f}) | {r['agree']:.1f} | {r['latency_vs_dense']:.2f}x | {r['ok']} |")
    at = {r["mode"]: r for r in rows if r["level"] == 15}
    print(f"\nat 3.6% remaining: sparse float = 1/{1 / at['sparse']['vs_dense']:.1f} of dense float (target <= 1/12: "
          f"{'PASS' if at['sparse']['vs_dense'] <= 1 / 12 else 'FAIL'}); int8 = 1/{1 / at['int8']['vs_dense']:.1f} raw, "
          f"1/{1 / at['int8']['gz_vs_dense']:.1f} gzipped (target <= 1/25: raw "
          f"{'PASS' if at['int8']['vs_dense'] <= 1 / 25 else 'FAIL'}, gzipped "
          f"{'PASS' if at['int8']['gz_vs_dense'] <= 1 / 25 else 'FAIL'}); accuracy drop sparse "
          f"{at['sparse']['keras_acc'] - at['sparse']['acc']:.2f}, int8 {at['int8']['keras_acc'] - at['int8']['acc']:.2f} "
          "points (target <= 0.5)")
    block = {r["mode"]: r for r in rows if r["level"] == BLOCK_LEVEL}
    speed = 1 / block["block_float"]["latency_vs_dense"]
    print(f"block-sparse float at {block['float']['remaining']:.1f}% remaining: {speed:.2f}x the dense float file's "
          f"speed (target >= 2x: {'PASS' if speed >= 2 else 'FAIL'}); block int8 "
          f"{1 / block['block_int8']['latency_vs_dense']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="1ep")
    parser.add_argument("--runs_dir", default="benchmarks/runs")
    args = parser.parse_args()
    main(args.steps, args.runs_dir)
