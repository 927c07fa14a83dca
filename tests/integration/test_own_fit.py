"""IMP inside a user's own fit: tfmot's wrapper, our IMPSchedule, UpdatePruningStep and Rewind, nothing else."""
import numpy as np
import pytest
import tensorflow_model_optimization as tfmot

from helpers import zeros_outside
from tflottery import IMPSchedule, Rewind, models, prune_imp
from tflottery.config import PruningConfig
from tflottery.core.errors import ConfigError
from tflottery.core.keras_compat import keras
from tflottery.pruning import masks as mask_lib
from tflottery.pruning.resolve import bind
from tflottery.models import get_weights
from tflottery.pruning.wrap import kernel_shapes, prunable_kinds

LEVEL_STEPS = 15


class Watch(keras.callbacks.Callback):
    """Listed after Rewind: sees the weights and masks after every step, as Rewind left them."""

    def __init__(self, rewind):
        super().__init__()
        self.rewind, self.step, self.zeros, self.before, self.after, self.rewound = rewind, 0, [], {}, {}, {}

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        weights, masks = get_weights(self.model), self.rewind.masks()
        self.zeros.append(zeros_outside(weights, masks))
        if self.step % LEVEL_STEPS == 0:  # the end of a level: what the next event ranks
            self.before[self.step // LEVEL_STEPS] = (weights, masks)
        if self.step % LEVEL_STEPS == 1 and self.step > 1:  # right after an event
            level = self.step // LEVEL_STEPS
            saved = self.rewind.rewind_weights
            self.after[level] = masks
            self.rewound[level] = all(np.array_equal(weights[k], saved[k] * masks[k]) for k in masks)


def _fit(model, sample_data, callbacks, levels=3, optimizer="adam"):
    x, y = sample_data.arrays["train"]
    steps = LEVEL_STEPS * (levels + 1)
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x[:50 * steps] / 255.0, y[:50 * steps], batch_size=50, epochs=1, shuffle=False, verbose=0,
              callbacks=callbacks)


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum"])
def test_imp_in_a_users_own_fit_prunes_rewinds_and_keeps_zeros(sample_data, optimizer):
    model = models.lenet_300_100((28, 28, 1), 10, seed=3)
    init = get_weights(model)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        model, pruning_schedule=IMPSchedule(rate=0.2, level_steps=LEVEL_STEPS, levels=3))
    rewind = Rewind("0it")
    watch = Watch(rewind)
    _fit(pruned, sample_data, [tfmot.sparsity.keras.UpdatePruningStep(), rewind, watch],
         optimizer=keras.optimizers.SGD(0.05, momentum=0.9) if optimizer == "sgd_momentum" else "adam")
    assert len(watch.zeros) == 4 * LEVEL_STEPS and all(watch.zeros)  # exactly zero after every step
    assert watch.rewound == {1: True, 2: True, 3: True}  # survivors back at the rewind weights
    assert all(np.array_equal(rewind.rewind_weights[k], init[k]) for k in init)
    kinds = prunable_kinds(model)
    strategy = bind(PruningConfig.from_dict({"dense_rate": 0.2, "output_rate": 0.2}), kinds, kernel_shapes(model))
    plan = strategy.plan(3)
    full = sum(strategy.sizes.values())
    assert [e["remaining"] for e in rewind.events] == pytest.approx([sum(plan[lv].values()) / full for lv in (1, 2, 3)])
    assert [round(e["remaining"], 3) for e in rewind.events] == [0.8, 0.64, 0.512]  # 20% of survivors per level
    for level in (1, 2, 3):  # the masks `find` draws from the same trained weights
        weights, previous = watch.before[level]
        expected = strategy.prune(weights, previous, plan[level])
        assert all(np.array_equal(watch.after[level][k], expected[k]) for k in expected), level


def test_prune_imp_follows_the_layerwise_plan_and_the_model_saves_and_strips(sample_data, tmp_path):
    model = models.lenet_300_100((28, 28, 1), 10, seed=1)
    pruned = prune_imp(model, level_steps=LEVEL_STEPS, levels=2)
    rewind = Rewind("5it")
    _fit(pruned, sample_data, [tfmot.sparsity.keras.UpdatePruningStep(), rewind], levels=2)
    kinds = prunable_kinds(model)
    strategy = bind(PruningConfig(), kinds, kernel_shapes(model))
    assert mask_lib.counts(rewind.masks()) == strategy.plan(2)[2]  # output layer at half rate, exact rounding
    pruned.save(tmp_path / "imp.keras")
    again = keras.models.load_model(tmp_path / "imp.keras")
    schedule = next(l for l in again.layers if hasattr(l, "pruning_schedule")).pruning_schedule
    assert isinstance(schedule, IMPSchedule) and schedule.level_steps == LEVEL_STEPS and schedule.levels == 2
    plain = tfmot.sparsity.keras.strip_pruning(again)
    assert np.isclose((plain.get_layer("fc1").kernel.numpy() == 0).mean(), 1 - 0.64, atol=1e-4)


@pytest.mark.parametrize("case,message", [
    ("rewind_beyond_level", "is not inside the first level"),
    ("no_schedule", "needs a model whose prunable layers are wrapped"),
    ("other_schedule", "with a tflottery.IMPSchedule"),
    ("no_update_step", "add tfmot.sparsity.keras.UpdatePruningStep"),
    ("steps_per_execution", "steps_per_execution=1"),
])
def test_misuse_is_one_clear_error(sample_data, case, message):
    model = models.lenet_300_100((28, 28, 1), 10, seed=0)
    schedule = IMPSchedule(0.2, LEVEL_STEPS, 1)
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep(), Rewind("40it" if case == "rewind_beyond_level" else "0it")]
    if case == "no_schedule":
        wrapped = model
    elif case == "other_schedule":
        wrapped = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, 0))
    else:
        wrapped = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    if case == "no_update_step":
        callbacks = callbacks[1:]
    x, y = sample_data.arrays["train"]
    wrapped.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    steps_per_execution=5 if case == "steps_per_execution" else 1)
    with pytest.raises(ConfigError, match=message):
        wrapped.fit(x[:100] / 255.0, y[:100], batch_size=50, epochs=1, verbose=0, callbacks=callbacks)


@pytest.mark.parametrize("kwargs,message", [
    ({"rate": 1.0}, r"rate=1.0 must lie in \[0, 1\)"),
    ({"rate": -0.1}, r"must lie in \[0, 1\)"),
    ({"level_steps": 0}, "level_steps=0 must be an integer >= 1"),
    ({"levels": -1}, "levels=-1 must be an integer >= 0"),
])
def test_bad_schedules_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        IMPSchedule(**{"rate": 0.2, "level_steps": 10, "levels": 2, **kwargs})


def test_global_pruning_in_a_users_fit_says_to_use_find():
    with pytest.raises(ConfigError, match="needs `tflottery find`"):
        prune_imp(models.lenet_300_100((28, 28, 1), 10), 10, 2, {"strategy": "global"})
