"""How much a pruning-at-initialisation mask moves when its score reads another sample of the data.

For a finished run (its level-0 weights, its strategy and its plan), SNIP and GraSP masks at the chosen
levels are drawn from two independent samples of the training set, for each amount of score data:
one training batch (the batch size of the run), and 10 and 100 class-balanced examples per class (GraSP's
code uses 10); the line printed is the Jaccard overlap |A and B| / |A or B| of the two masks over every
pruned layer, mean over --draws pairs of samples. SynFlow and magnitude at init read no data (overlap 1).
Run: python benchmarks/score_draws.py RUN [--levels 7 12 15] [--draws 3]
"""
import argparse

import numpy as np


def jaccard(a: dict, b: dict) -> float:
    both = sum(int((a[k] & b[k]).sum()) for k in a)
    either = sum(int((a[k] | b[k]).sum()) for k in a)
    return both / either


def main(run: str, levels: list, draws: int) -> None:
    from tflottery.engine.branches.grasp import grasp_scores
    from tflottery.engine.branches.scored import balanced, batches, keep_order, plain_model
    from tflottery.engine.branches.snip import snip_scores
    from tflottery.engine.run import open_run, replicate_context

    ctx = replicate_context(open_run(run, verbose=False), 0)
    weights, ones = ctx.rewind_weights(), ctx.all_ones()
    names = list(ctx.strategy.sizes)
    model = plain_model(ctx, weights, ones)
    scorers = {"SNIP": lambda data: snip_scores(model, list(ones), data),
               "GraSP": lambda data: grasp_scores(model, list(ones), data, 200.0)}
    amounts = {f"1 batch of {ctx.config.training.batch_size}": lambda seed: batches(ctx, seed, 1),
               "10 per class": lambda seed: balanced(ctx, seed, 10),
               "100 per class": lambda seed: balanced(ctx, seed, 100)}
    print(f"{run}: {ctx.config.pruning.strategy} pruning; Jaccard overlap of two masks from independent data "
          f"samples, mean over {draws} pairs")
    for method, score in scorers.items():
        for amount, sample in amounts.items():
            cells = []
            for level in levels:
                row = ctx.plan.rows[level]
                overlaps = []
                for d in range(draws):
                    a, b = (ctx.strategy.prune(keep_order(score(sample(1000 + 2 * d + i)), names), ones, row)
                            for i in (0, 1))
                    overlaps.append(jaccard(a, b))
                cells.append(f"level {level} ({100 * ctx.plan.remaining[level]:.1f}%): {np.mean(overlaps):.3f}")
            print(f"{method:<6} {amount:<16} " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--levels", type=int, nargs="+", default=[7, 12, 15])
    parser.add_argument("--draws", type=int, default=3)
    args = parser.parse_args()
    main(args.run, args.levels, args.draws)
