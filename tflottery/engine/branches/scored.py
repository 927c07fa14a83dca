"""The base of branches whose mask is chosen by a score: pruning at initialisation and the ticket's ablations.

A scored branch gives, at a level, the mask it selects within (`within`: all ones for pruning at
initialisation, the previous level's ticket mask for the ticket) and a score per weight (higher
keeps). The run's strategy selects the level's counts from the scores exactly as IMP selects from
magnitudes (layerwise: each layer's count; global: one ranking over layers; under the run's
structure: N:M groups or blocks), so a pruning-at-init mask has the ticket's sparsity by
construction. Its `ablation` parameter is one of Frankle et al. 2021's sanity checks:

* `shuffle`: each layer's mask permuted at random (the same per-layer count, random positions);
* `reinit`: the mask on weights drawn afresh from the model's initialisers;
* `invert`: the lowest scores kept instead of the highest.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflottery.config import setting
from tflottery.core.errors import ConfigError
from tflottery.engine.branches.base import Branch, BranchStart
from tflottery.pruning import masks as mask_lib

ABLATIONS = ("none", "shuffle", "reinit", "invert")


def keep_order(scores: dict, names: list, invert: bool = False) -> dict:
    """Scores shifted to be >= 0 over all layers in `names` together (float64), so that a magnitude selection
    keeps their order whatever their sign (GraSP's are signed); `invert` reverses the order. Ties keep
    their order by position either way, as magnitude pruning's do."""
    flat = {k: np.asarray(scores[k], np.float64) for k in names}
    if not all(np.all(np.isfinite(v)) for v in flat.values()):
        raise ConfigError("a pruning score came out NaN or infinite: the network's gradients overflow at these "
                          "weights (a deeper network: synflow computes in float64).")
    if invert:
        top = max(float(v.max()) for v in flat.values())
        return {k: top - v for k, v in flat.items()}
    low = min(float(v.min()) for v in flat.values())
    return flat if low >= 0 else {k: v - low for k, v in flat.items()}


class ScoredMask(Branch):
    per_level = True

    @dataclass
    class Params:
        ablation: str = setting("none", "Frankle et al. 2021's checks: none, shuffle (each layer's mask permuted), "
                                        "reinit (fresh weights), invert (keep the lowest scores)")

    def check(self) -> None:
        if self.params.ablation not in ABLATIONS:
            raise ConfigError(f"{self.kind} ablation={self.params.ablation!r}: use one of {', '.join(ABLATIONS)}.")

    def score_seed(self, ctx, level: int) -> int:
        """The seed of the scores' data: the branch's without its ablation, so that an ablation changes only
        what it names (SNIP reinitialised keeps SNIP's mask)."""
        import dataclasses

        plain = type(self)(dataclasses.replace(self.params, ablation=type(self).Params().ablation))
        return ctx.seed(level, plain.key(), "score_data")

    def within(self, ctx, level: int) -> dict:
        """The mask the level's selection stays inside."""
        return ctx.all_ones()

    def scores(self, ctx, level: int, weights: dict, masks: dict) -> dict:
        """A score per weight of every pruned kernel (higher keeps), at `weights` under `masks`."""
        raise NotImplementedError

    def start_weights(self, ctx, level: int) -> dict:
        return ctx.rewind_weights()

    def select(self, ctx, level: int, weights: dict, masks: dict, row: dict) -> dict:
        """`masks` pruned to the counts of plan row `row` by this branch's scores (inverted if asked)."""
        names = list(ctx.strategy.sizes)
        scored = self.scores(ctx, level, weights, masks)
        return ctx.strategy.prune(keep_order(scored, names, self.params.ablation == "invert"), masks, row)

    def level_mask(self, ctx, level: int, weights: dict) -> dict:
        return self.select(ctx, level, weights, self.within(ctx, level), ctx.plan.rows[level])

    def start(self, ctx, level: int) -> BranchStart:
        weights = self.start_weights(ctx, level)
        masks = self.level_mask(ctx, level, weights)
        if self.params.ablation == "shuffle":
            masks = mask_lib.random_like(masks, self.seed(ctx, level, "shuffle"))
        if self.params.ablation == "reinit":
            seed = self.seed(ctx, level, "init")
            return BranchStart(masks, lambda: ctx.fresh_weights(seed), ctx.rewind_step, ctx.end_step)
        return BranchStart(masks, weights, ctx.rewind_step, ctx.end_step)


def plain_model(ctx, weights: dict, masks: dict, dtype: str = "float32"):
    """The run's architecture as a plain tf_keras model at `weights` x `masks` (`dtype`: float64 for scores
    whose products overflow float32)."""
    import json

    from tflottery import models
    from tflottery.core.keras_compat import keras

    from tflottery.models.built import BuiltModel

    if isinstance(ctx.setup.base, BuiltModel):
        if dtype != "float32":
            from tflottery.core.errors import ConfigError

            raise ConfigError(f"This score computes in {dtype}, and a model built by code has float32 variables: "
                              "drop that branch for this model.")
        model = ctx.setup.base.copy()
        models.set_weights(model, {k: v * masks[k] if k in masks else v for k, v in weights.items()})
        return model
    spec = ctx.setup.base.to_json()
    if dtype != "float32":
        spec = json.dumps(_with_dtype(json.loads(spec), dtype))
    model = keras.models.model_from_json(spec)
    models.set_weights(model, {k: (v * masks[k] if k in masks else v).astype(dtype) for k, v in weights.items()})
    return model


def _with_dtype(node, dtype: str):
    if isinstance(node, dict):
        return {k: (dtype if k == "dtype" and isinstance(v, (str, dict)) else _with_dtype(v, dtype))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_with_dtype(v, dtype) for v in node]
    return node


def batches(ctx, seed: int, count: int) -> list:
    """`count` training batches of the order `seed` draws (the scores' data)."""
    return list(ctx.data.train_pipeline(seed, count))


def balanced(ctx, seed: int, per_class: int) -> list:
    """`per_class` training examples of every class, drawn by `seed`, as batches (GraSP's code scores from
    `samples_per_class` examples of each class: 10 by default, 100 examples on a 10-class dataset)."""
    from tflottery import data as data_lib

    x, y = ctx.data.arrays["train"]
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):
        where = np.flatnonzero(y == label)
        chosen += list(rng.choice(where, min(per_class, where.size), replace=False))
    chosen = np.array(sorted(chosen))
    return list(data_lib.eval_pipeline(x[chosen], y[chosen], divisor=ctx.data.divisor))


def score_data(branch, ctx, level: int) -> list:
    """The data a gradient score reads: class-balanced samples (`samples_per_class` > 0) or `batches` training
    batches of the score's own order."""
    seed = branch.score_seed(ctx, level)
    p = branch.params
    return balanced(ctx, seed, p.samples_per_class) if p.samples_per_class else batches(ctx, seed, p.batches)


def loss_fn(model, x, y, temperature: float = 1.0):
    import tensorflow as tf

    logits = tf.cast(model(x, training=False), tf.float32) / temperature
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(y, tf.int32), logits=logits))


def kernels(model, names) -> list:
    from tflottery.models.weights import weight_variables

    variables = weight_variables(model)
    return [variables[k] for k in names]


def dense_gradients(model, names: list, data: list) -> dict:
    """The loss gradient with respect to each kernel of `names` (every weight, zero or not), summed over batches."""
    import tensorflow as tf

    variables = kernels(model, names)
    total = [tf.zeros_like(v) for v in variables]
    for x, y in data:
        with tf.GradientTape() as tape:
            loss = loss_fn(model, x, y)
        total = [t + g for t, g in zip(total, tape.gradient(loss, variables))]
    return {k: g.numpy() for k, g in zip(names, total)}
