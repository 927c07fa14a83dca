"""IMP engine speed: LeNet-300-100 (or `--model vit_tiny`), batch 60, 55,000 examples, one process.

Prints the engine's epoch time at 100%, 21.1% and 3.6% weights remaining (its trainer's wrappers: pruned
weights held at zero, gradients masked), and `wrap`'s for a user's own fit (weight x mask in every forward
pass) at 100% and 3.6%, as ratios against
  (a) a default `model.fit` of the dense model (target: <= 0.50, twice as fast), and
  (b) a dense `fit` with the engine's own settings (target: <= 1.10, wrappers cost <= 10%).
"Default fit" is what a user writes first: `compile(Adam, loss, metrics)` and
`fit(x, y, batch_size=60)` on numpy arrays. Configurations are timed in interleaved rounds;
the ratio uses each configuration's fastest epoch (noise on shared machines only ever adds
time: per-round times with --verbose), and the medians are printed beside it.
With `--model vit_tiny` the same table for the transformer (its attention projections masked by variable, its
Dense layers by wrappers); `--steps N` times N steps a round instead of an epoch (for models whose epoch is long).
Run: python benchmarks/imp_speed.py [--rounds 5] [--steps_per_execution 50] [--verbose] [--model M] [--steps N]
"""
import argparse
import os
import statistics
import time

os.environ.setdefault("TFLOTTERY_OFFLINE", "1")
import tflottery  # noqa: E402,F401
import numpy as np  # noqa: E402

from common import load_data  # noqa: E402

from tflottery import models  # noqa: E402
from tflottery.config import PruningConfig, TrainingConfig  # noqa: E402
from tflottery.core.keras_compat import keras  # noqa: E402
from tflottery.engine.optim import compile_model  # noqa: E402
from tflottery.pruning import masks as mask_lib, wrap as wrap_lib  # noqa: E402
from tflottery.engine.plan import training_steps  # noqa: E402
from tflottery.pruning.resolve import bind  # noqa: E402

MODEL = "lenet_300_100"  # --model: any zoo model on Fashion-MNIST's shape


def engine_model(remaining_level: int, engine: TrainingConfig, spe: int, zeros_kept: bool = True):
    """LeNet-300-100 at a level's masks in frozen-mask wrappers: as the engine's trainer trains it (`zeros_kept`:
    pruned weights held at zero, their gradients masked) or as `wrap` gives it to a user's own fit (weight x mask
    in every forward pass)."""
    model = models.build(MODEL, (28, 28, 1), 10, seed=0)
    wrapped = wrap_lib.wrap(model)
    for layer in wrapped.layers:
        if isinstance(layer, wrap_lib.FrozenMaskWrapper):
            layer.zeros_kept = zeros_kept
    weights = models.get_weights(wrapped)
    kinds = wrap_lib.prunable_kinds(wrapped)
    strategy = bind(PruningConfig(), kinds, wrap_lib.kernel_shapes(wrapped))
    plan = strategy.plan(remaining_level)
    masks = mask_lib.ones_like(weights, kinds)
    for level in range(1, remaining_level + 1):
        masks = strategy.prune(weights, masks, plan[level])
    wrap_lib.set_masks(wrapped, masks)
    return compile_model(wrapped, engine, training_steps(engine, spe)), mask_lib.remaining(masks)["total"]


def main(rounds: int = 5, verbose: bool = False, steps_per_execution: int = 50, steps: int = 0) -> None:
    data = load_data()
    spe = steps or data.steps_per_epoch
    engine = TrainingConfig(steps_per_execution=steps_per_execution, jit_compile=True)  # one network under XLA
    x_numpy = data.arrays["train"][0][:spe * 60].astype(np.float32) / 255.0
    y_numpy = data.arrays["train"][1][:spe * 60]

    default = models.build(MODEL, (28, 28, 1), 10, seed=0)
    default.compile(keras.optimizers.Adam(1.2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    configs = {"dense, default fit": default,
               "dense, engine settings": compile_model(models.build(MODEL, (28, 28, 1), 10, seed=0), engine,
                                                     training_steps(engine, spe))}
    for level in (0, 7, 15):
        model, remaining = engine_model(level, engine, spe)
        configs[f"engine, {100 * remaining:.1f}% remaining"] = model
    for level in (0, 15):
        model, remaining = engine_model(level, engine, spe, zeros_kept=False)
        configs[f"own-fit wrap, {100 * remaining:.1f}%"] = model

    times = {name: [] for name in configs}
    for r in range(rounds + 1):  # round 0 compiles and warms up
        for name, model in configs.items():
            start = time.perf_counter()
            if name == "dense, default fit":
                model.fit(x_numpy, y_numpy, batch_size=60, epochs=1, verbose=0)
            else:
                model.fit(data.train_pipeline(seed=r, end=spe), steps_per_epoch=spe, epochs=1, verbose=0)
            if r:
                times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    best = {name: min(t) for name, t in times.items()}
    if verbose:
        for name, t in times.items():
            print(f"  {name:<28} " + " ".join(f"{v:.2f}" for v in t))
    base, same = best["dense, default fit"], best["dense, engine settings"]
    span = f"{spe} steps" if steps else "epochs"
    print(f"{MODEL}, batch 60, {data.num_train} examples ({data.info['source']}), {rounds} interleaved {span} per "
          f"configuration, steps_per_execution={steps_per_execution}, XLA on, {os.cpu_count()} CPUs\n")
    print(f"{'configuration':<28} {'best s':>7} {'median s':>9} {'vs default fit':>15} {'vs dense, same settings':>24}")
    for name, t in best.items():
        print(f"{name:<28} {t:7.2f} {median[name]:9.2f} {t / base:14.2f}x {t / same:23.2f}x")
    engine_rows = [n for n in best if n.startswith("engine")]
    worst_default = max(best[n] / base for n in engine_rows)
    worst_same = max(best[n] / same for n in engine_rows)
    print(f"\nworst engine / default fit:        {worst_default:.2f}x (target <= 0.50) "
          f"{'PASS' if worst_default <= 0.5 else 'FAIL'}")
    print(f"worst engine / dense same settings: {worst_same:.2f}x (target <= 1.10) "
          f"{'PASS' if worst_same <= 1.10 else 'FAIL'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps_per_execution", type=int, default=50)
    parser.add_argument("--verbose", action="store_true", help="print every round's epoch times")
    parser.add_argument("--model", default=MODEL, help="a zoo model on 28x28x1 inputs: lenet_300_100, vit_tiny, ...")
    parser.add_argument("--steps", type=int, default=0, help="steps a round (default: an epoch)")
    args = parser.parse_args()
    MODEL = args.model
    main(args.rounds, args.verbose, args.steps_per_execution, args.steps)
