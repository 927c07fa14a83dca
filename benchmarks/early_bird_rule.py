"""The early-bird rule on Fashion-MNIST: which distance and threshold draw a mask that has settled.

LeNet-300-100, Adam 1.2e-3, batch 60, 3 epochs (2,748 steps) per level, a mask every 200
steps, window 5 (the README's early-bird settings), seeds 0.. (--seeds). For each seed:
  1. the IMP run to 3.6% (levels 7, 12, 15 hold 21.1%, 7.0%, 3.6%);
  2. per target, the whole dense trajectory of 1 - Jaccard distances between consecutive masks
     (an early-bird run that never draws, with the fallback); the normalised Hamming distance of
     the same pair of equal-size masks follows exactly: d_H = p D / (1 - D / 2);
  3. per target, distance and threshold, the step the rule draws at, and the early-bird ticket
     that `tflottery find --strategy=early_bird` trains from there (runs that draw at the same
     step share one ticket: it is the same computation).
Prints one markdown table: per (target, distance, threshold) the mean draw epoch, the ticket's
accuracy against IMP's (mean and the range over seeds) and the training steps it saves.
Run: python benchmarks/early_bird_rule.py [--seeds 3] [--runs_dir /tmp/eb_runs]
"""
import argparse
import copy
import json
import os
import statistics

os.environ.setdefault("TFLOTTERY_OFFLINE", "1")
import tflottery  # noqa: E402,F401

from tflottery import find_ticket  # noqa: E402
from tflottery.config import RunConfig  # noqa: E402

TARGETS = {0.211: 7, 0.07: 12, 0.036: 15}  # target remaining -> the IMP level that holds it
THRESHOLDS = {"jaccard": (0.05, 0.1, 0.2, 0.3), "hamming": (0.02, 0.1)}
WINDOW, EVERY = 5, 200


def base(seed: int, runs_dir: str) -> dict:
    return {"seed": seed, "runs_dir": runs_dir,
            "data": {"dataset": "fashion_mnist", "source": "idx"},
            "training": {"steps": "3ep", "eval_every": "1ep", "verbose": False},
            "plan": {"branches": []}}


def run(config: dict):
    return find_ticket(RunConfig.from_dict(config))


def early_bird(seed: int, runs_dir: str, target: float, distance: str, threshold: float, fallback=False):
    config = base(seed, runs_dir)
    config["plan"]["target_remaining"] = target
    config["pruning"] = {"strategy": "early_bird", "early_bird_window": WINDOW, "early_bird_every": f"{EVERY}it",
                         "early_bird_distance": distance, "early_bird_threshold": threshold,
                         "early_bird_fallback": fallback}
    return run(config)


def draw_step(distances: list, threshold: float):
    """The step the rule draws at, from (step, distance) of consecutive checks; None when it never does."""
    for i in range(WINDOW - 2, len(distances)):
        window = distances[i - WINDOW + 2:i + 1]
        if all(d <= threshold for _, d in window):
            return distances[i][0]
    return None


def measure(seed: int, runs_dir: str) -> list:
    config = base(seed, runs_dir)
    config["plan"]["levels"] = max(TARGETS.values())
    imp = run(config)
    rep, steps = imp.replicate(0), imp.plan.steps
    rows = []
    for target, level in TARGETS.items():
        imp_accuracy = rep.metrics(level)["early_stop_test_accuracy"]
        imp_steps = steps * (level + 1)
        never = early_bird(seed, runs_dir, target, "jaccard", 1e-9, fallback=True)
        bird = never.replicate(0).metrics(0)["early_bird"]
        kept = never.replicate(0).metrics(never.plan.levels[-1])["remaining"]
        jaccard = [(h["step"], h["distance"]) for h in bird["history"] if h["distance"] is not None]
        by = {"jaccard": jaccard, "hamming": [(s, kept * d / (1 - d / 2)) for s, d in jaccard]}
        for distance, thresholds in THRESHOLDS.items():
            for threshold in thresholds:
                step = draw_step(by[distance], threshold)
                row = {"seed": seed, "target": target, "distance": distance, "threshold": threshold,
                       "drawn_step": step, "imp_accuracy": imp_accuracy, "imp_steps": imp_steps,
                       "trajectory": [round(d, 4) for _, d in by[distance]]}
                if step is not None:
                    ticket = early_bird(seed, runs_dir, target, distance, threshold)
                    tm = ticket.replicate(0).metrics(ticket.plan.levels[-1])
                    assert ticket.replicate(0).metrics(0)["early_bird"]["drawn_step"] == step
                    row.update(bird_accuracy=tm["early_stop_test_accuracy"], bird_steps=step + steps)
                rows.append(row)
    return rows


def table(rows: list) -> str:
    out = ["| target | distance | threshold | drawn (epoch, mean) | drawn in | early-bird ticket % | IMP ticket % | "
           "steps saved |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    keys = sorted({(r["target"], r["distance"], r["threshold"]) for r in rows}, key=lambda k: (-k[0], k[1], k[2]))
    for target, distance, threshold in keys:
        group = [r for r in rows if (r["target"], r["distance"], r["threshold"]) == (target, distance, threshold)]
        drawn = [r for r in group if r["drawn_step"] is not None]
        imp = [100 * r["imp_accuracy"] for r in group]
        cell = lambda xs: (f"{statistics.mean(xs):.2f} [{min(xs):.2f}, {max(xs):.2f}]" if len(xs) > 1  # noqa: E731
                           else f"{xs[0]:.2f}") if xs else "–"
        epochs = f"{statistics.mean(r['drawn_step'] for r in drawn) / 916:.2f}" if drawn else "never"
        saved = f"{statistics.mean(r['imp_steps'] - r['bird_steps'] for r in drawn):,.0f}" if drawn else "–"
        out.append(f"| {100 * target:.1f}% | {distance} | {threshold:g} | {epochs} | {len(drawn)}/{len(group)} | "
                   f"{cell([100 * r['bird_accuracy'] for r in drawn])} | {cell(imp)} | {saved} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--runs_dir", default="/tmp/early_bird_rule")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    parser.add_argument("--rows", default=None, help="print the table (and figure) of rows written by --out")
    parser.add_argument("--figure", default=None, help="seed 0's distances, the default rule's draws marked (.png)")
    args = parser.parse_args()
    if args.rows:
        with open(args.rows) as f:
            rows = json.load(f)
    else:
        rows = []
        for seed in range(args.seeds):
            rows += measure(seed, args.runs_dir)
            print(f"seed {seed} done", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(copy.deepcopy(rows), f, indent=1)
    print(table(rows))
    if args.figure:
        print(figure(rows, args.figure))


def figure(rows: list, out: str):
    """Seed 0's Jaccard distances per target, the default rule's (Jaccard 0.2) draws marked."""
    from tflottery import plots

    histories, drawn = {}, {}
    for r in rows:
        if r["seed"] == 0 and r["distance"] == "jaccard" and r["threshold"] == 0.2:
            label = f"target {100 * r['target']:.1f}%"
            histories[label] = [{"step": EVERY * (i + 2), "distance": d} for i, d in enumerate(r["trajectory"])]
            drawn[label] = r["drawn_step"]
    return plots.mask_distance(histories, 916, 0.2, out, "jaccard", drawn)


if __name__ == "__main__":
    main()
