"""The main job's cost of replicates: `./dev run` (task 2, 3 replicates) against one replicate.

Three commands, each in a fresh process and its own temporary directories, timed in interleaved
rounds (noise on a shared machine only adds time: each command's fastest round counts, medians
beside):
  0.2      tflottery 0.2's own main job (`python -m tflottery.recipes.task2` at the commit 0.2 was
           on main, checked out from this clone's history into a temporary work tree): one
           replicate, the single-replicate time the 0.3 round started from;
  today    today's main job: 3 replicates, trained together (population groups);
  today_1  today's code with one replicate trained 0.2's way
           (`--replicates=1 --population=1 --jit_compile=true`).
Target (issue 20): today <= 1.5x 0.2's single-replicate time. today / today_1 is printed beside it:
today_1 has every speed-up of the 0.3 round that is not about replicates, so it says what three
replicates cost over one with today's code.
Run: python benchmarks/main_job.py [--rounds 2] [--release d3ee56c]
"""
import argparse
import os
import statistics

from common import RELEASE_0_2, against_0_2

ONE_REPLICATE_AS_0_2 = ["--replicates=1", "--population=1", "--jit_compile=true"]


def main(rounds: int, release: str) -> None:
    times = against_0_2("task2", release, [], ONE_REPLICATE_AS_0_2, rounds)
    best = {name: min(t) for name, t in times.items()}
    print(f"\nThe main job (task 2 on the 5,000-digit MNIST sample, ticket exports and figures included), "
          f"{os.cpu_count()} CPUs, {rounds} interleaved rounds, best (median) seconds:")
    for name, label in (("0.2", f"tflottery 0.2 ({release}), 1 replicate"), ("today", "today, 3 replicates"),
                        ("today_1", "today, 1 replicate the 0.2 way")):
        print(f"  {label:42s} {best[name]:6.1f} ({statistics.median(times[name]):.1f})")
    ratio = best["today"] / best["0.2"]
    print(f"3 replicates today / 1 replicate in 0.2: {ratio:.2f}x (target <= 1.50) {'PASS' if ratio <= 1.5 else 'FAIL'}")
    print(f"3 replicates today / 1 replicate today, 0.2's way: {best['today'] / best['today_1']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--release", default=RELEASE_0_2, help="the commit whose main job is the reference")
    args = parser.parse_args()
    main(args.rounds, args.release)
