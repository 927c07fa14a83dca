"""Linear mode connectivity: error along the straight line between two trained copies (Frankle et al. 2020).

At each of `alphas` evenly spaced points w(a) = (1 - a) w1 + a w2, the network (masks applied:
both copies share one mask, so pruned weights stay zero on the whole line) is evaluated on the
test set and on a fixed subset of the training set. Batch-norm statistics, where the model
has them, are recomputed at each point on a few training batches, as the paper does (the
averaged running statistics of two networks are not the statistics of their average).
Instability = the largest error on the path minus the mean error of its two ends, in points.
"""
from __future__ import annotations

import numpy as np

from tflottery.keras_compat import keras
from tflottery.pruning import wrap as wrap_lib

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


def error(model: keras.Model, dataset) -> float:
    """Top-1 error in percent."""
    return 100.0 * (1.0 - float(model.evaluate(dataset, verbose=0, return_dict=True)["accuracy"]))


def path(model: keras.Model, a: dict, b: dict, alphas: int, test, train_subset, bn_batches=None) -> dict:
    """Test and train error (%) at `alphas` evenly spaced points from `a` (alpha 0) to `b` (alpha 1)."""
    grid = np.linspace(0.0, 1.0, alphas)
    test_errors, train_errors = [], []
    for alpha in grid:
        wrap_lib.set_weights(model, {k: ((1.0 - alpha) * a[k] + alpha * b[k]).astype(a[k].dtype) for k in a})
        if bn_batches is not None and has_batch_norm(model):
            recompute_batch_norm(model, bn_batches)
        test_errors.append(error(model, test))
        train_errors.append(error(model, train_subset))
    return {"alphas": grid.tolist(), "test_error": test_errors, "train_error": train_errors,
            "instability": instability(test_errors), "train_instability": instability(train_errors)}


def instability(errors: list) -> float:
    """The largest error on the path minus the mean error of its two ends (points)."""
    return float(max(errors) - (errors[0] + errors[-1]) / 2.0)


def measure_point(rep, level: int, step: int, copies: int = 2, alphas: int = 30, train_examples: int = 10000,
                  same_order: bool = False) -> dict:
    """Train `copies` copies of `level` from dense step `step` (stacked, resumable) and measure every pair.

    Returns {"rewind_step", "level", "copies": [branch keys], "end_test_accuracy": [...], "pairs": [...],
    "instability": mean over pairs (test, points), "train_instability", "max_instability"}.
    """
    from tflottery import data as data_lib
    from tflottery.engine.branches import Copy
    from tflottery.engine.seeds import derive_seed

    branches = [Copy(step, c, order=0 if same_order else None) for c in range(copies)]
    rep.train_together(level, branches)
    records = [rep.record(level, b.key()) for b in branches]
    model = rep.model_for(None, rep.config.training, rep.data)
    wrap_lib.set_masks(model, records[0].masks)
    x, y = rep.data.arrays["train"]
    subset = data_lib.eval_pipeline(x[:train_examples], y[:train_examples])
    bn = list(rep.data.train_pipeline(derive_seed(rep.config.seed, rep.replicate_index, level, "bn", "data_order"),
                                      BN_BATCHES)) if has_batch_norm(model) else None
    pairs = []
    for i in range(copies):
        for j in range(i + 1, copies):
            pairs.append({"pair": [i, j], **path(model, records[i].final, records[j].final, alphas, rep.data.test,
                                                 subset, bn)})
    return {"rewind_step": step, "level": level, "copies": [b.key() for b in branches],
            "end_test_accuracy": [r.metrics["final_test_accuracy"] for r in records],
            "remaining": records[0].metrics["remaining"], "pairs": pairs,
            "instability": float(np.mean([p["instability"] for p in pairs])),
            "train_instability": float(np.mean([p["train_instability"] for p in pairs])),
            "max_instability": float(max(p["instability"] for p in pairs))}
