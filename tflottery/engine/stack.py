"""Several copies of a masked model trained side by side as one compiled program.

The towers share no weight: the loss is the sum of the towers' losses, so each tower's
gradient is exactly its own loss's gradient, and Adam or SGD update each tower as they
would update it alone. Each tower reads its own batches (its own seed). One compiled step
for all towers keeps a 2-core CPU busy where one small network alone cannot, and on a GPU
it turns several small kernels into a few larger ones.
"""
from __future__ import annotations

from dataclasses import dataclass

from tflottery.engine.train import LevelResult
from tflottery.keras_compat import keras
from tflottery.pruning import wrap as wrap_lib

TOWER = "copy_{}"


def stacked_model(base: keras.Model, prune: list, towers: int) -> wrap_lib.MaskedModel:
    """`towers` copies of `base` (layers renamed `<name>_c<i>`, prunable ones wrapped), outputs `copy_<i>`."""
    inputs, outputs = [], []
    for c in range(towers):
        inp = keras.Input(base.input_shape[1:], name=f"{TOWER.format(c)}_input")

        def clone(layer, c=c):
            copy = layer.__class__.from_config({**layer.get_config(), "name": f"{layer.name}_c{c}"})
            if layer.name in prune:
                return wrap_lib.FrozenMaskWrapper(copy, pruning_schedule=wrap_lib.IMPSchedule())
            return copy

        tower = keras.models.clone_model(base, input_tensors=inp, clone_function=clone)
        inputs.append(inp)
        outputs.append(keras.layers.Activation("linear", dtype="float32", name=TOWER.format(c))(tower.output))
    return wrap_lib.MaskedModel(inputs, outputs, name=f"{base.name}_x{towers}")


def tower_keys(c: int) -> callable:
    suffix = f"_c{c}/"
    return lambda name: name.replace(suffix, "/") if suffix in name else None


def get_tower(model: keras.Model, c: int, what: str = "weights") -> dict:
    values = wrap_lib.get_weights(model) if what == "weights" else wrap_lib.get_masks(model)
    rename = tower_keys(c)
    return {rename(k): v for k, v in values.items() if rename(k)}


def set_tower(model: keras.Model, c: int, weights: dict, masks: dict) -> None:
    wrap_lib.set_weights(model, {k.replace("/", f"_c{c}/", 1): v for k, v in weights.items()}, strict=False)
    wrap_lib.set_masks(model, {k.replace("/", f"_c{c}/", 1): v for k, v in masks.items()})


@dataclass
class StackedData:
    """A `Data` for stacked towers: tower i reads the batches of `seeds[i]`; evaluation feeds every tower."""

    data: object
    seeds: list

    @property
    def steps_per_epoch(self) -> int:
        return self.data.steps_per_epoch

    def train_pipeline(self, seed, end: int, start: int = 0):
        """One gather for all towers per step: indices [steps, towers, batch], split into a tuple per tower."""
        import numpy as np
        import tensorflow as tf

        from tflottery.data import batch_indices, preprocess

        d, n = self.data, len(self.seeds)
        indices = np.stack([batch_indices(d.num_train, d.batch_size, s, start, end) for s in self.seeds], axis=1)
        images, labels = d.train_tensors

        def gather(i):
            x, y = preprocess(tf.gather(images, i)), tf.gather(labels, i)
            return tuple(x[c] for c in range(n)), tuple(y[c] for c in range(n))

        ds = tf.data.Dataset.from_tensor_slices(indices).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def _each(self, ds):
        n = len(self.seeds)
        return None if ds is None else ds.map(lambda x, y: ((x,) * n, (y,) * n))

    @property
    def validation(self):
        return self._each(self.data.validation)

    @property
    def test(self):
        return self._each(self.data.test)


def split_result(result: LevelResult, towers: int) -> list:
    """One LevelResult per tower from the stacked history (keys like test_copy_1_accuracy)."""
    out = []
    for c in range(towers):
        tag = f"{TOWER.format(c)}_"
        history = []
        for row in result.history:
            own = {"step": row["step"]}
            for key, value in row.items():
                prefix, _, rest = key.partition("_")
                if rest.startswith(tag):
                    own[f"{prefix}_{rest[len(tag):]}"] = value
            history.append(own)
        out.append(LevelResult(history, {}, result.wall_time_s / towers))
    return out
