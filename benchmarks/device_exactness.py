"""Exactness on this device: a population of K units trained as one program is the K units trained one at a time,
byte for byte (masks, weights, metrics apart from wall times), for LeNet-300-100 and vit_tiny through `find`.

Run: python benchmarks/device_exactness.py [--units 5] [--steps 200]. Exits 1 naming the first differing file.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import tflottery  # noqa: F401
from tflottery import find_ticket
from tflottery.engine.distribute import threads_for_towers  # noqa: F401


def files(run: Path) -> dict:
    """{relative path: content} of a run, wall times and locks left out."""
    out = {}
    for path in sorted(run.rglob("*")):
        rel = path.relative_to(run).as_posix()
        if not path.is_file() or ".units" in rel or path.name in (".lock", "replicates.csv", "config.json"):
            continue
        data = path.read_bytes()
        if path.name in ("metrics.json", "manifest.json"):
            value = json.loads(data)
            value.pop("wall_time_s", None)
            value.get("files", {}).pop("metrics.json", None)
            data = json.dumps(value, sort_keys=True).encode()
        out[rel] = data
    return out


def check(model: str, units: int, steps: int, where: Path) -> str:
    def run(population: int) -> Path:
        config = {"model": {"name": model}, "data": {"dataset": "fashion_mnist", "source": "idx"},
                  "runs_dir": str(where / f"{model}_{population}"),
                  "plan": {"levels": 1, "branches": ["reinit", "random_prune"], "replicates": max(1, units // 4),
                           "population": population},
                  "training": {"steps": f"{steps}it", "eval_every": f"{steps}it", "verbose": False}}
        return find_ticket(config).path

    grouped, alone = files(run(units)), files(run(1))
    differing = sorted(k for k in set(grouped) | set(alone) if grouped.get(k) != alone.get(k))
    return f"{model}: {len(alone)} files, population {units} vs one at a time: " + (
        "identical" if not differing else f"DIFFERENT ({differing[0]} and {len(differing) - 1} more)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--models", default="lenet_300_100,vit_tiny")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lines = [check(m, args.units, args.steps, Path(tmp)) for m in args.models.split(",")]
    print("\n".join(lines))
    sys.exit(0 if all(line.endswith("identical") for line in lines) else 1)
