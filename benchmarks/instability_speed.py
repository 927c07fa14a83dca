"""Instability copies side by side: LeNet-300-100, batch 60, 55,000 examples, one process.

Times one epoch of (a) one copy alone, (b) two copies one after another (two epochs of (a)'s
model, as training them in turn costs), and (c) two copies stacked as towers of one compiled
model (`tflottery.engine.stack`), each with its own batch order. Configurations are timed in
interleaved rounds; the ratios use each configuration's fastest round (noise on a shared
machine only adds time). Target on a 2-core CPU: two stacked copies in <= 1.6x the time of one.
Run: python benchmarks/instability_speed.py [--rounds 5] [--copies 2]
"""
import argparse
import os
import time

os.environ.setdefault("TFLOTTERY_OFFLINE", "1")
import tflottery  # noqa: E402,F401

from tflottery import models  # noqa: E402
from tflottery.config import TrainingConfig  # noqa: E402
from tflottery.engine.optim import compile_model  # noqa: E402
from tflottery.engine.stack import StackedData, stacked_model  # noqa: E402
from tflottery.pruning import wrap as wrap_lib  # noqa: E402

from imp_speed import load_data  # noqa: E402


def main(rounds: int, copies: int) -> None:
    data = load_data()
    spe = data.steps_per_epoch
    engine = TrainingConfig()
    base = models.build("lenet_300_100", (28, 28, 1), 10, seed=0)
    prune = [k.split("/")[0] for k in wrap_lib.prunable_kinds(base)]
    single = compile_model(wrap_lib.wrap(models.build("lenet_300_100", (28, 28, 1), 10, seed=0)), engine, spe)
    stacked = compile_model(stacked_model(base, prune, copies), engine, spe)
    times = {"one copy": [], f"{copies} copies one after another": [], f"{copies} copies stacked": []}
    for r in range(rounds + 1):  # round 0 compiles and warms up
        start = time.perf_counter()
        single.fit(data.train_pipeline(r, spe), steps_per_epoch=spe, epochs=1, verbose=0)
        one = time.perf_counter() - start
        for c in range(1, copies):
            single.fit(data.train_pipeline(r + 100 * c, spe), steps_per_epoch=spe, epochs=1, verbose=0)
        serial = time.perf_counter() - start
        start = time.perf_counter()
        stacked.fit(StackedData(data, [r + 100 * c for c in range(copies)]).train_pipeline(None, spe),
                    steps_per_epoch=spe, epochs=1, verbose=0)
        together = time.perf_counter() - start
        if r:
            for name, value in zip(times, (one, serial, together)):
                times[name].append(value)
    best = {name: min(t) for name, t in times.items()}
    base_time = best["one copy"]
    print(f"LeNet-300-100, batch 60, {data.num_train} examples ({data.info['source']}), {rounds} interleaved rounds, "
          f"steps_per_execution={engine.steps_per_execution}, XLA on, {os.cpu_count()} CPUs\n")
    print(f"{'configuration':<32} {'best s':>7} {'vs one copy':>12}")
    for name, value in best.items():
        print(f"{name:<32} {value:7.2f} {value / base_time:11.2f}x")
    ratio = best[f"{copies} copies stacked"] / base_time
    print(f"\n{copies} copies stacked / one copy: {ratio:.2f}x (target <= 1.60 for 2 copies) "
          f"{'PASS' if copies != 2 or ratio <= 1.6 else 'FAIL'}; one after another: "
          f"{best[f'{copies} copies one after another'] / base_time:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--copies", type=int, default=2)
    args = parser.parse_args()
    main(args.rounds, args.copies)
