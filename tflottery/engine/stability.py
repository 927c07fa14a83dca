"""Linear mode connectivity: error along the straight line between trained copies (Frankle et al. 2020),
and rewind=auto's probe of the dense network built on it.

At each of `alphas` evenly spaced points w(a) = (1 - a) w1 + a w2, the network (masks applied:
both copies share one mask, so pruned weights stay zero on the whole line) is evaluated on the
test set and on a fixed subset of the training set. Batch-norm statistics, where the model
has them, are recomputed at each point on a few training batches, as the paper does (the
averaged running statistics of two networks are not the statistics of their average).
Instability = the largest error on the path minus the mean error of its two ends, in points.
"""
from __future__ import annotations

import numpy as np

from tflottery.core.keras_compat import keras
from tflottery.engine.branches import Copy
from tflottery.core.stats import Interval, jackknife_pairs
from tflottery.engine.plan import PROBE_ALPHAS, PROBE_COPIES, STABLE_PP
from tflottery.engine.units import make_unit, save_unit

BN_BATCHES = 5


def has_batch_norm(model: keras.Model) -> bool:
    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


def recompute_batch_norm(model: keras.Model, batches) -> None:
    """Moving means and variances of every batch-norm layer: the average over `batches` (training batches)."""
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    try:
        for i, (x, _) in enumerate(batches):
            for layer in layers:
                layer.momentum = i / (i + 1)  # a running average over the batches seen
            model(x, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


def error(model, dataset) -> float:
    """Top-1 error in percent of a one-unit population model."""
    return 100.0 * (1.0 - float(model.evaluate_units(dataset)[0]["accuracy"]))


def path(model, a: dict, b: dict, masks: dict, alphas: int, test, train_subset, bn_batches=None) -> dict:
    """Test and train error (%) at `alphas` evenly spaced points from `a` (alpha 0) to `b` (alpha 1)."""
    grid = np.linspace(0.0, 1.0, alphas)
    test_errors, train_errors = [], []
    for alpha in grid:
        model.set_tower(0, {k: ((1.0 - alpha) * a[k] + alpha * b[k]).astype(a[k].dtype) for k in a}, masks)
        if bn_batches is not None and has_batch_norm(model):
            recompute_batch_norm(model, [([x], y) for x, y in bn_batches])
        test_errors.append(error(model, test))
        train_errors.append(error(model, train_subset))
    return {"alphas": grid.tolist(), "test_error": test_errors, "train_error": train_errors,
            "instability": instability(test_errors), "train_instability": instability(train_errors)}


def instability(errors: list) -> float:
    """The largest error on the path minus the mean error of its two ends (points)."""
    return float(max(errors) - (errors[0] + errors[-1]) / 2.0)


def measure_point(ctx, level: int, step: int, copies: int = 2, alphas: int = 30, train_examples: int = 10000,
                  same_order: bool = False) -> dict:
    """Train `copies` copies of `level` from dense step `step` (one population, resumable) and measure every pair.

    Returns {"rewind_step", "level", "copies": [branch keys], "end_test_accuracy": [...], "pairs": [...],
    "instability": mean over pairs (test, points), "train_instability", "max_instability"}.
    """
    from tflottery import data as data_lib

    branches = [Copy(rewind_step=step, copy=c, order=0 if same_order else None) for c in range(copies)]
    pending = [make_unit(ctx, level, b) for b in branches if not ctx.store.is_done(level, b.key())]
    if pending:
        for unit, result in zip(pending, ctx.trainer.train(pending)):
            save_unit(unit, result)
    records = [ctx.record(level, b.key()) for b in branches]
    model = ctx.trainer.model_for(1, None, ctx.config.training, ctx.plan.training)
    x, y = ctx.data.arrays["train"]
    subset = data_lib.eval_pipeline(x[:train_examples], y[:train_examples], divisor=ctx.data.divisor)
    bn = list(ctx.data.train_pipeline(ctx.seed(level, "bn", "data_order"),
                                      BN_BATCHES)) if has_batch_norm(model) else None
    pairs = []
    for i in range(copies):
        for j in range(i + 1, copies):
            pairs.append({"pair": [i, j], **path(model, records[i].final, records[j].final, records[0].masks, alphas,
                                                 ctx.data.test, subset, bn)})
    barrier = jackknife_pairs({tuple(p["pair"]): p["instability"] for p in pairs})
    return {"rewind_step": step, "level": level, "copies": [b.key() for b in branches],
            "end_test_accuracy": [r.metrics["final_test_accuracy"] for r in records],
            "remaining": records[0].metrics["remaining"], "pairs": pairs,
            "instability": float(np.mean([p["instability"] for p in pairs])), "interval": barrier.to_dict(),
            "train_instability": float(np.mean([p["train_instability"] for p in pairs])),
            "max_instability": float(max(p["instability"] for p in pairs))}


def stability_verdict(barrier: Interval, threshold: float) -> str:
    """stable (the whole 95% interval of the barrier below `threshold`), unstable (above it), undecided
    (the interval holds it), or, without an interval (two copies), the mean against the threshold."""
    if barrier.low is None:
        return ("stable" if barrier.mean < threshold else "unstable") + " (one pair: no interval)"
    return "stable" if barrier.high < threshold else "unstable" if barrier.low > threshold else "undecided"


def probe_rewind(ctx) -> int:
    """rewind=auto: the earliest step of the grid at which the dense network is stable to SGD noise.

    At each grid step (earliest first) PROBE_COPIES copies train from the dense run's weights there
    with different batch orders (one population group); the first step whose test-error barrier
    has its whole 95% interval (jackknife over the copies) below STABLE_PP points is chosen
    (Frankle et al. 2020 decide on one pair; one pair's barrier varied 0.45-2.03 points over seeds). The probe's numbers are stored as the replicate's rewind
    choice (`rewind.json`) and go into every ticket exported from this replicate.
    """
    choice = ctx.store.rewind_choice()
    if choice is not None:
        return int(choice["step"])
    probe, chosen = [], None
    say = ctx.progress.say if ctx.progress is not None else (lambda text: None)
    for step in ctx.plan.grid:
        point = measure_point(ctx, 0, step, copies=PROBE_COPIES, alphas=PROBE_ALPHAS, train_examples=2000)
        barrier = Interval(**point["interval"])
        verdict = stability_verdict(barrier, STABLE_PP)
        probe.append({"step": step, "instability": point["instability"], "interval": point["interval"],
                      "verdict": verdict, "end_test_accuracy": point["end_test_accuracy"]})
        say(f"r{ctx.replicate_index} rewind=auto: the dense network rewound to step {step} has a test-error barrier "
            f"of {barrier.text()} points ({PROBE_COPIES} copies): {verdict} at {STABLE_PP}")
        if verdict == "stable":
            chosen = step
            break
    stable = chosen is not None
    chosen = chosen if stable else ctx.plan.grid[-1]
    ctx.store.save_rewind_choice({"step": chosen, "stable": stable, "threshold_pp": STABLE_PP, "probe": probe,
                                  "alphas": PROBE_ALPHAS, "copies": PROBE_COPIES, "decided_by": "95% interval"})
    say(f"r{ctx.replicate_index} rewind=auto: rewinding to step {chosen}" +
        ("" if stable else f" (no grid step was stable below {STABLE_PP} points: the latest one)"))
    return chosen
