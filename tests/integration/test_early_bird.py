"""Early-bird tickets (You et al. 2020): the mask is drawn once it stops changing during dense training."""
import numpy as np
import pytest

from helpers import tiny_config
from tflottery import find_ticket, plan_ticket
from tflottery.core.errors import ConfigError, RunError
from tflottery.core.keras_compat import keras
from tflottery.engine.resolve import check
from tflottery.models import get_weights, set_weights
from tflottery.pruning.early_bird import EarlyBirdCallback as EarlyBird, tracker_for
from tflottery.pruning.strategies.early_bird import hamming, jaccard


def _model():
    inputs = keras.Input((8,), name="x")
    hidden = keras.layers.Dense(16, activation="relu", name="fc")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(hidden), name="small")


def _trajectory(model, epochs: int, settle: int, seed: int = 0) -> list:
    """Weights whose top magnitudes change until `settle`, then only grow (the mask stops changing)."""
    rng = np.random.default_rng(seed)
    base = get_weights(model)
    path = []
    for epoch in range(epochs):
        if epoch <= settle:
            base = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in base.items()}
        else:
            base = {k: v * 1.01 for k, v in base.items()}
        path.append(dict(base))
    return path


class _Set(keras.callbacks.Callback):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        set_weights(self.model, self.path[epoch])


@pytest.mark.parametrize("distance", ["jaccard", "hamming"])
def test_the_callback_draws_at_the_right_epoch_on_a_crafted_trajectory(distance):
    model = _model()
    path = _trajectory(model, epochs=20, settle=6)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    bird = EarlyBird(target_remaining=0.3, window=5, threshold=0.1, distance=distance)
    x, y = np.zeros((32, 8), np.float32), np.zeros(32, np.int32)
    history = model.fit(x, y, batch_size=8, epochs=20, verbose=0, callbacks=[_Set(path), bird])
    # masks change up to epoch 7 (index 6), then stay: the window of 5 masks is still from epoch 7 on at epoch 11
    assert bird.drawn_epoch == 11 and len(history.history["loss"]) == 11  # training stopped there
    assert [row["distance"] for row in bird.history[:7]][1:] == pytest.approx(
        [{"jaccard": jaccard, "hamming": hamming}[distance](bird.tracker.mask_of(path[i - 1]),
                                                            bird.tracker.mask_of(path[i])) for i in range(1, 7)])
    assert all(row["distance"] == 0.0 for row in bird.history[7:11])
    assert all(np.array_equal(bird.masks[k], bird.tracker.mask_of(path[10])[k]) for k in bird.masks)


def test_the_density_aware_distance_means_the_same_at_any_density():
    """Two disjoint masks at 3.6% remaining: Jaccard distance 1, You et al.'s Hamming only 0.072 (at most 2p)."""
    size, kept = 100_000, 3_600
    a, b = np.zeros(size, bool), np.zeros(size, bool)
    a[:kept], b[kept:2 * kept] = True, True
    assert jaccard({"w": a}, {"w": b}) == 1.0 and hamming({"w": a}, {"w": b}) == pytest.approx(0.072)
    assert jaccard({"w": a}, {"w": a}) == 0.0
    c = a.copy()
    c[kept // 2:kept], c[kept:kept + kept // 2] = False, True  # half the kept set swapped
    assert jaccard({"w": a}, {"w": c}) == pytest.approx(1 - 1 / 3) and hamming({"w": a}, {"w": c}) == pytest.approx(0.036)


def test_checks_in_steps_happen_under_steps_per_execution():
    """50 steps a compiled call, a check every 70 steps: each runs at the first batch end at or after a multiple
    (issue 25: 0.2 made no check at all)."""
    model = _model()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), steps_per_execution=50)
    x, y = np.random.default_rng(0).normal(size=(2400, 8)).astype(np.float32), np.zeros(2400, np.int32)
    bird = EarlyBird(target_remaining=0.3, window=5, threshold=0.1, every="70it", stop=False, fallback=True)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[bird])
    assert [row["step"] for row in bird.history] == [100, 150, 250, 300]
    assert bird.drawn_step is None and bird.masks is not None  # 4 masks < window 5: the fallback's final mask


def test_a_fit_without_a_draw_is_an_error_unless_the_fallback_is_asked_for():
    model = _model()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.zeros((32, 8), np.float32), np.zeros(32, np.int32)
    with pytest.raises(RunError, match="EarlyBird drew no mask in 12 steps .* pass fallback=True"):
        model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[EarlyBird(0.3, window=5)])


def test_the_callbacks_masks_are_the_strategys_masks():
    from tflottery.config import PruningConfig
    from tflottery.pruning import masks as mask_lib
    from tflottery.pruning.resolve import bind
    from tflottery.pruning.wrap import kernel_shapes, prunable_kinds

    model = _model()
    for pruning in ({}, {"strategy": "global", "rate": 0.3}):
        tracker = tracker_for(model, 0.2, pruning=pruning)
        weights = get_weights(model)
        kinds = prunable_kinds(model)
        strategy = bind(PruningConfig.from_dict(pruning), kinds, kernel_shapes(model))
        plan = strategy.plan(strategy.levels_for(0.2))
        masks = mask_lib.ones_like(weights, kinds)
        expected = strategy.prune(weights, masks, plan[-1])
        got = tracker.mask_of(weights)
        assert all(np.array_equal(got[k], expected[k]) for k in expected)
        assert mask_lib.remaining(got)["total"] <= 0.2


def test_find_with_early_bird_stops_dense_training_and_prunes_from_there(in_tmp, sample_data):
    config = tiny_config(levels=None, target_remaining=0.1, strategy="early_bird", early_bird_every="10it",
                         early_bird_threshold=0.1)
    config.training.steps = "120it"
    run = find_ticket(config, data=sample_data)
    rep = run.replicate(0)
    dense, ticket = rep.load_level(0), rep.load_level(run.plan.levels[-1])
    bird = dense.metrics["early_bird"]
    assert bird["drawn"] and bird["drawn_step"] < 120 and bird["dense_steps_saved"] == 120 - bird["drawn_step"]
    assert dense.metrics["history"][-1]["step"] == bird["drawn_step"]  # the dense level ended at the draw
    tracker = tracker_for(run.model, 0.1, 5, 0.1)
    expected = tracker.mask_of(dense.final)
    assert all(np.array_equal(ticket.masks[k], expected[k]) for k in expected)  # the early-bird mask itself
    assert ticket.metrics["remaining"] <= 0.1 and run.plan.levels == [0, run.plan.levels[-1]]


def test_find_without_a_draw_stops_with_the_fix_and_resumes_with_the_fallback(in_tmp, sample_data):
    """The dense level is kept; no pruned level is drawn from it until the user asks for the fallback, which
    the same run accepts (it does not change what a drawn run trains)."""
    config = tiny_config(levels=None, target_remaining=0.1, strategy="early_bird", early_bird_every="10it",
                         early_bird_threshold=0.01)
    config.training.steps = "60it"
    with pytest.raises(RunError, match="level 0's dense training drew no mask .* --early_bird_fallback=true"):
        find_ticket(config, data=sample_data)
    config.pruning.settings["early_bird_fallback"] = True
    run = find_ticket(config, data=sample_data)
    rep = run.replicate(0)
    assert rep.levels() == [0, run.plan.levels[-1]] and not rep.metrics(0)["early_bird"]["drawn"]
    assert rep.metrics(0)["history"][-1]["step"] == 60  # the whole dense training, trained once
    assert len(list(in_tmp.joinpath("runs").iterdir())) == 1


def test_a_rule_that_could_never_draw_is_refused_before_any_work(in_tmp, sample_data):
    config = tiny_config(levels=None, target_remaining=0.1, strategy="early_bird")  # every 1ep of a 30-step level
    with pytest.raises(ConfigError, match="is drawn 0 times in the dense training of 30 steps, and the rule needs 5"):
        find_ticket(config, data=sample_data)
    assert not (in_tmp / "runs").exists()


@pytest.mark.parametrize("kwargs,message", [
    ({"distance": "cosine"}, "distance='cosine' is unknown: use jaccard or hamming"),
    ({"target_remaining": 1.5}, r"target_remaining=1.5 must lie in \(0, 1\)"),
    ({"target_remaining": 0.0}, r"must lie in \(0, 1\)"),
    ({"window": 1}, "window=1 must be an integer >= 2"),
    ({"threshold": 0.0}, r"threshold=0.0 must lie in \(0, 1\]"),
    ({"threshold": 1.5}, r"threshold=1.5 must lie in \(0, 1\]"),
    ({"every": "0it"}, "never checks"),
])
def test_bad_early_bird_settings_are_one_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        EarlyBird(**{"target_remaining": 0.1, **kwargs})


def test_early_bird_needs_a_target_and_its_own_fields_need_it(sample_data):
    with pytest.raises(ConfigError, match="give --target_remaining"):
        plan_ticket(tiny_config(levels=3, strategy="early_bird"), data=sample_data)
    with pytest.raises(ConfigError, match="layerwise does not use early_bird_window"):
        check(tiny_config(early_bird_window=3))
    with pytest.raises(ConfigError, match="window=1 must be an integer >= 2"):
        check(tiny_config(levels=None, target_remaining=0.1, strategy="early_bird", early_bird_window=1))
