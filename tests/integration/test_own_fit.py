"""IMP inside a user's own fit: tfmot's wrapper, our IMPSchedule, UpdatePruningStep and Rewind, nothing else."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from helpers import zeros_outside
from tflottery import IMPSchedule, Rewind, imp_steps, models, prune_imp
from tflottery.config import PruningConfig
from tflottery.core.errors import ConfigError
from tflottery.core.keras_compat import keras
from tflottery.pruning import masks as mask_lib
from tflottery.pruning.resolve import bind
from tflottery.models import get_weights
from tflottery.pruning.wrap import kernel_shapes, prunable_kinds

LEVEL_STEPS = 15


class Watch(keras.callbacks.Callback):
    """Listed after Rewind: sees the weights and masks at every level's start (as Rewind left them) and after
    every step."""

    def __init__(self, rewind):
        super().__init__()
        self.rewind, self.zeros, self.before, self.after, self.rewound, self.steps = rewind, [], {}, {}, {}, {}

    def _level_starting(self, done):
        schedule = self.rewind.schedule
        return next((lv for lv in range(1, schedule.levels + 1) if schedule.level_start(lv) == done), None)

    def on_train_batch_begin(self, batch, logs=None):
        level = self._level_starting(self.rewind.done())
        if level is not None:  # right after an event: survivors at the rewind weights
            weights, masks, saved = get_weights(self.model), self.rewind.masks(), self.rewind.rewind_weights
            self.after[level] = masks
            self.rewound[level] = all(np.array_equal(weights[k], saved[k] * masks[k]) for k in masks)

    def on_train_batch_end(self, batch, logs=None):
        weights, masks = get_weights(self.model), self.rewind.masks()
        self.zeros.append(zeros_outside(weights, masks))
        self.steps[self.rewind.done()] = weights
        level = self._level_starting(self.rewind.done())
        if level is not None:  # the end of a level: what the next event ranks
            self.before[level] = (weights, masks)


def _fit(model, sample_data, callbacks, optimizer="adam"):
    x, y = sample_data.arrays["train"]
    steps = imp_steps(model)
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x[:50 * steps] / 255.0, y[:50 * steps], batch_size=50, epochs=1, shuffle=False, verbose=0,
              callbacks=callbacks)


@pytest.mark.parametrize("optimizer,rewind_step", [("adam", 0), ("sgd_momentum", 0), ("adam", 5)])
def test_imp_in_a_users_own_fit_prunes_rewinds_and_keeps_zeros(sample_data, optimizer, rewind_step):
    model = models.lenet_300_100((28, 28, 1), 10, seed=3)
    init = get_weights(model)
    schedule = IMPSchedule(rate=0.2, level_steps=LEVEL_STEPS, levels=3, rewind_step=rewind_step)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    rewind = Rewind(f"{rewind_step}it")
    watch = Watch(rewind)
    _fit(pruned, sample_data, [rewind, watch],  # no UpdatePruningStep: Rewind starts tfmot's count itself
         optimizer=keras.optimizers.SGD(0.05, momentum=0.9) if optimizer == "sgd_momentum" else "adam")
    assert len(watch.zeros) == LEVEL_STEPS + 3 * (LEVEL_STEPS - rewind_step) and all(watch.zeros)
    assert [e["step"] for e in rewind.events] == [schedule.level_start(lv) for lv in (1, 2, 3)]
    assert watch.rewound == {1: True, 2: True, 3: True}  # survivors back at the rewind weights
    kept = init if rewind_step == 0 else watch.steps[rewind_step]
    assert all(np.array_equal(rewind.rewind_weights[k], kept[k]) for k in kept)
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
    pruned = prune_imp(model, level_steps=LEVEL_STEPS, levels=2, rewind="5it")
    rewind = Rewind("5it")
    _fit(pruned, sample_data, [tfmot.sparsity.keras.UpdatePruningStep(), rewind])
    assert imp_steps(pruned) == LEVEL_STEPS + 2 * (LEVEL_STEPS - 5)
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
    ("rewind_elsewhere", "lays out levels rewound to step 0"),
    ("no_schedule", "needs a model whose prunable layers are wrapped"),
    ("other_schedule", "with a tflottery.IMPSchedule"),
    ("steps_per_execution", "steps_per_execution=1"),
])
def test_misuse_is_one_clear_error(sample_data, case, message):
    model = models.lenet_300_100((28, 28, 1), 10, seed=0)
    schedule = IMPSchedule(0.2, LEVEL_STEPS, 1)
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep(), Rewind("5it" if case == "rewind_elsewhere" else "0it")]
    if case == "no_schedule":
        wrapped = model
    elif case == "other_schedule":
        wrapped = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, 0))
    else:
        wrapped = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
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


def _find_and_own_fit(sample_data, tmp_path, k: int, steps: int = 120, levels: int = 2):
    """The same IMP run two ways: `find`, and `prune_imp` + `Rewind` in a plain fit fed the batches `find`
    trains on, level after level (Adam with warm-up and a drop, so the schedule's step matters). Both under
    XLA: on a CPU `find` defaults to the graph with Adam fused into one kernel, which a plain Keras Adam
    matches only to the last bits."""
    from tflottery import WarmupPiecewise, find_ticket
    from tflottery.extend import derive_seed
    from tflottery.config import RunConfig

    training = {"steps": f"{steps}it", "eval_every": f"{steps}it", "batch_size": 50, "lr": 2e-3, "warmup": "20it",
                "milestones": [f"{steps - 30}it"], "gamma": 0.5, "jit_compile": True, "steps_per_execution": 1,
                "verbose": False}
    config = RunConfig.from_dict({"data": {"dataset": "mnist", "validation": 400}, "seed": 4,
                                  "pruning": {"rewind": f"{k}it"}, "plan": {"levels": levels},
                                  "training": training, "runs_dir": str(tmp_path / "runs")})
    run = find_ticket(config, data=sample_data)
    replicate = run.replicate(0)

    pipeline = None
    for level in range(levels + 1):
        seed = derive_seed(config.seed, 0, level, "ticket", "data_order")
        part = sample_data.train_pipeline(seed, steps, 0 if level == 0 else k)
        pipeline = part if pipeline is None else pipeline.concatenate(part)
    model = models.lenet_300_100((28, 28, 1), 10, seed=derive_seed(config.seed, 0, None, None, "init"))
    assert all(np.array_equal(v, replicate.load_level(0).start[n]) for n, v in get_weights(model).items())
    pruned = prune_imp(model, level_steps=steps, levels=levels, rewind=f"{k}it")
    pruned.compile(keras.optimizers.Adam(WarmupPiecewise(2e-3, 20, (steps - 30,), 0.5)),
                   keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    rewind = Rewind(f"{k}it")
    pruned.fit(pipeline, epochs=1, steps_per_epoch=imp_steps(pruned), verbose=0, callbacks=[rewind])
    return replicate.load_level(levels), rewind, get_weights(pruned)


@pytest.mark.parametrize("k", [0, 90])
def test_rewind_in_a_users_fit_trains_what_find_trains(sample_data, tmp_path, k):
    """Same masks and weights as `find`, late rewinding with Adam included: the optimizer's counter restarts
    with its moments at each level (bias correction as in `find`), the schedule reads from step k, and every
    level ends at T. (Issue 25: 0.2 set the counter to k, up to 4x too large a first step.)"""
    level, rewind, weights = _find_and_own_fit(sample_data, tmp_path, k)
    masks = rewind.masks()
    assert set(masks) == set(level.masks) and all(np.array_equal(masks[n], level.masks[n]) for n in masks)
    for name, value in level.final.items():
        assert np.array_equal(weights[name], value), name  # bit for bit
    assert all(np.array_equal(rewind.record()["start"][n], level.start[n]) for n in level.start)


def test_a_fit_resumed_from_a_checkpoint_continues_imp_exactly(sample_data, tmp_path):
    """Killed after 3 of 5 epochs (inside level 1, k = 5), reloaded from the checkpoint in a new fit with the
    same state folder: masks, weights and events equal an uninterrupted fit's; without the folder, refused."""
    x, y = sample_data.arrays["train"]
    per_epoch, epochs = 7, 5

    def data(skip=0):
        ds = tf.data.Dataset.from_tensor_slices((x[:50 * per_epoch * epochs] / 255.0, y[:50 * per_epoch * epochs]))
        return ds.batch(50).skip(skip * per_epoch)

    def fresh():
        pruned = prune_imp(models.lenet_300_100((28, 28, 1), 10, seed=2), level_steps=LEVEL_STEPS, levels=2,
                           rewind="5it")
        assert imp_steps(pruned) == per_epoch * epochs
        pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return pruned

    whole, whole_rewind = fresh(), Rewind("5it")
    whole.fit(data(), epochs=epochs, steps_per_epoch=per_epoch, verbose=0, callbacks=[whole_rewind])

    first, state = fresh(), tmp_path / "imp_state"
    first.fit(data(), epochs=3, steps_per_epoch=per_epoch, verbose=0, callbacks=[Rewind("5it", state=state)])
    first.save(tmp_path / "checkpoint.keras")
    again = keras.models.load_model(tmp_path / "checkpoint.keras")
    with pytest.raises(ConfigError, match="give Rewind\\(state=FOLDER\\)"):
        again.fit(data(3), initial_epoch=3, epochs=epochs, steps_per_epoch=per_epoch, verbose=0, callbacks=[Rewind("5it")])
    again = keras.models.load_model(tmp_path / "checkpoint.keras")
    rewind = Rewind("5it", state=state)
    again.fit(data(3), initial_epoch=3, epochs=epochs, steps_per_epoch=per_epoch, verbose=0, callbacks=[rewind])
    assert rewind.events == whole_rewind.events and len(rewind.events) == 2
    assert all(np.array_equal(m, whole_rewind.masks()[k]) for k, m in rewind.masks().items())
    final, expected = get_weights(again), get_weights(whole)
    assert all(np.array_equal(final[k], expected[k]) for k in expected)
