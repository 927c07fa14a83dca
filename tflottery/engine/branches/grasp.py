"""GraSP (Wang et al. 2020): keep the weights whose removal would most reduce gradient flow, from H g."""
from __future__ import annotations

from dataclasses import dataclass

from tflottery.config import setting
from tflottery.core.errors import ConfigError
from tflottery.engine.branches.scored import ScoredMask, kernels, loss_fn, plain_model, score_data


class Grasp(ScoredMask):
    kind = "grasp"
    method = "GraSP"
    description = "pruning at initialisation preserving gradient flow, by -w . Hg (Wang et al. 2020)"

    @dataclass
    class Params(ScoredMask.Params):
        batches: int = setting(1, "training batches for g and Hg")
        temperature: float = setting(200.0, "the logits' temperature (GraSP's code: 200)")
        samples_per_class: int = setting(0, "score from this many examples of each class instead (GraSP's code: "
                                            "10); 0: `batches` training batches")

    def check(self) -> None:
        super().check()
        if not 1 <= self.params.batches <= 1000 or not self.params.temperature > 0:
            raise ConfigError(f"grasp batches={self.params.batches} must lie in [1, 1000] and temperature="
                              f"{self.params.temperature} be > 0.")
        if not 0 <= self.params.samples_per_class <= 10000:
            raise ConfigError(f"grasp samples_per_class={self.params.samples_per_class} must lie in [0, 10000].")

    def scores(self, ctx, level: int, weights: dict, masks: dict) -> dict:
        return grasp_scores(plain_model(ctx, weights, masks), list(masks), score_data(self, ctx, level),
                            self.params.temperature)


def grasp_scores(model, names: list, data: list, temperature: float) -> dict:
    """w . Hg per kernel weight, H the Hessian of the loss and g its gradient (both over `data`, logits / T).
    GraSP's score is S = -w . Hg and it removes the highest S: this returns -S, higher keeps."""
    import tensorflow as tf

    variables = kernels(model, names)
    g = [tf.zeros_like(v) for v in variables]
    for x, y in data:
        with tf.GradientTape() as tape:
            loss = loss_fn(model, x, y, temperature)
        g = [a + b for a, b in zip(g, tape.gradient(loss, variables))]
    hg = [tf.zeros_like(v) for v in variables]
    for x, y in data:
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                loss = loss_fn(model, x, y, temperature)
            grads = inner.gradient(loss, variables)
            z = tf.add_n([tf.reduce_sum(a * tf.stop_gradient(b)) for a, b in zip(grads, g)])
        hg = [a + b for a, b in zip(hg, outer.gradient(z, variables))]
    return {k: (v * h).numpy() for k, v, h in zip(names, variables, hg)}
