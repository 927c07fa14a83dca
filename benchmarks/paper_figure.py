"""The published LeNet figure (Frankle & Carbin 2019, Figs. 3-4), timed from a measured fraction.

`python -m tflottery.recipes.lenet_mnist --paper` is 5 replicates x (level 0 + 16 levels x ticket,
reinit, random_prune) = 245 units of 50,000 iterations with evaluation every 100: days on a CPU.
Timed here: its first two levels (`--levels=1`, 20 units: level 0 of 5 replicates, then their 3
branches of level 1) at 1,000 iterations a level, the paper's evaluation every 100, on data of
MNIST's size (Fashion-MNIST: the same shapes, 55,000 / 5,000 / 10,000; the Debian files), start-up
included, each command in a fresh process, in interleaved rounds (best counts):
  0.2      tflottery 0.2's own recipe (checked out from this clone's history): one unit at a time;
  today    today's default: population groups;
  today_1  today's code one unit at a time, 0.2's way (`--population=1 --jit_compile=true`).
Printed: seconds, ms per unit-iteration, and the whole figure projected at that rate (start-up
counted in the rate, so the projection is high).
Run: python benchmarks/paper_figure.py [--rounds 1] [--iterations 1000]
"""
import argparse
import os
import statistics

from common import RELEASE_0_2, against_0_2

UNITS_TIMED = 5 * (1 + 3)  # replicates x (level 0 + level 1's ticket, reinit, random_prune)
UNITS_FIGURE = 5 * (1 + 16 * 3)
ITERATIONS_FIGURE = 50_000


def main(rounds: int, iterations: int, release: str) -> None:
    fraction = ["--paper", "--dataset=fashion_mnist", "--levels=1", f"--steps={iterations}it"]
    times = against_0_2("lenet_mnist", release, fraction, ["--population=1", "--jit_compile=true"], rounds)
    print(f"\nlenet_mnist --paper, levels 0-1 of 5 replicates ({UNITS_TIMED} units) at {iterations} iterations a level, "
          f"evaluation every 100, Fashion-MNIST, {os.cpu_count()} CPUs, {rounds} interleaved round(s), start-up included:")
    print(f"{'':44s} {'best s':>7} {'median':>7} {'ms per unit-iteration':>22} {'the figure, projected':>22}")
    rate = {}
    for name, label in (("0.2", f"tflottery 0.2 ({release}), one unit at a time"), ("today", "today, population groups"),
                        ("today_1", "today, one unit at a time (0.2's way)")):
        best = min(times[name])
        rate[name] = best / (UNITS_TIMED * iterations)
        hours = rate[name] * UNITS_FIGURE * ITERATIONS_FIGURE / 3600
        print(f"{label:44s} {best:7.1f} {statistics.median(times[name]):7.1f} {1e3 * rate[name]:22.2f} "
              f"{hours:19.1f} h")
    print(f"population training per unit: {rate['today'] / rate['0.2']:.2f}x of 0.2, "
          f"{rate['today'] / rate['today_1']:.2f}x of today's one unit at a time")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--release", default=RELEASE_0_2, help="the commit whose recipe is the reference")
    args = parser.parse_args()
    main(args.rounds, args.iterations, args.release)
