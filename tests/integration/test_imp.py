"""The IMP engine: exact pruning, rewinding, baselines, and one run per identity that grows in place."""
import numpy as np
import pytest

from helpers import kill_after, run_files, tiny_config, zeros_outside
from tflottery.core.errors import ConfigError
from tflottery import find_ticket, plan_ticket
from tflottery.engine.store import RunStore
from tflottery.core.errors import ModelError, RunError
from tflottery.core.keras_compat import keras


@pytest.mark.parametrize("optimizer", [{"optimizer": "adam"}, {"optimizer": "sgd", "momentum": 0.9, "lr": 0.05}])
def test_imp_prunes_exactly_keeps_zeros_and_rewinds_bit_for_bit(in_tmp, sample_data, optimizer):
    config = tiny_config(levels=3)
    for key, value in optimizer.items():
        setattr(config.training, key, value)
    run = find_ticket(config, data=sample_data)
    rep = run.replicate(0)
    init = rep.load_level(0).start
    previous = None
    for level in range(4):
        record = rep.load_level(level)
        assert zeros_outside(record.final, record.masks)  # pruned weights exactly zero after training
        if previous is not None:
            assert all(np.all(record.masks[k] <= previous[k]) for k in previous)  # nested
        for name, value in record.start.items():  # survivors start at the rewind point, bit for bit
            mask = record.masks.get(name)
            assert np.array_equal(value, init[name] * mask if mask is not None else init[name]), (level, name)
        previous = record.masks
    # The plan's per-layer counts (dense 20%, output 10%), reached from trained weights:
    counts = {k: int(m.sum()) for k, m in rep.load_level(3).masks.items()}
    assert counts == {"fc1/kernel": 120422, "fc2/kernel": 15360, "output/kernel": 729}
    assert [{k: v for k, v in row.items()} for row in run.plan.rows[3:4]] == [counts]
    kernel = run.model.get_layer("prune_low_magnitude_fc1").layer.kernel.numpy()  # the model holds a sparse ticket
    assert abs((kernel == 0).mean() - (1 - 120422 / 235200)) < 1e-6
    metrics = rep.metrics(3)
    assert 0.5 < metrics["final_test_accuracy"] <= 1.0
    assert [row["step"] for row in metrics["history"]] == [0, 15, 30]


@pytest.mark.slow
def test_same_seed_same_masks_and_other_seed_other_masks(tmp_path, sample_data):
    masks = []
    for seed, where in ((0, "a"), (0, "b"), (1, "c")):
        config = tiny_config(levels=1)
        config.seed, config.runs_dir = seed, str(tmp_path / where)
        masks.append(find_ticket(config, data=sample_data).replicate(0).load_level(1).masks)
    assert all(np.array_equal(masks[0][k], masks[1][k]) for k in masks[0])
    assert not np.array_equal(masks[0]["fc1/kernel"], masks[2]["fc1/kernel"])


@pytest.mark.slow
def test_more_levels_train_only_the_new_levels_and_leave_the_old_ones_byte_identical(in_tmp, sample_data):
    config = tiny_config(levels=3, branches=["reinit"], jit=True)
    first = find_ticket(config, data=sample_data)
    before = run_files(first.path / "replicate_0")
    config.plan.levels = 5
    second = find_ticket(config, data=sample_data)
    assert second.path == first.path  # levels are not part of the run's identity
    assert second.trained == [(0, 4, "ticket"), (0, 4, "reinit"), (0, 5, "ticket"), (0, 5, "reinit")]
    after = run_files(first.path / "replicate_0")
    assert all(after[name] == data for name, data in before.items())  # the 4 old levels: byte-identical
    assert second.replicate(0).levels() == [0, 1, 2, 3, 4, 5]


@pytest.mark.slow
def test_another_branch_trains_only_that_branch_and_more_replicates_only_the_new_ones(in_tmp, sample_data):
    run = find_ticket(tiny_config(levels=2, branches=["reinit"]), data=sample_data)
    grown = find_ticket(tiny_config(levels=2, branches=["reinit", "random_prune"]), data=sample_data)
    assert grown.path == run.path and grown.trained == [(0, 1, "random_prune"), (0, 2, "random_prune")]
    before = run_files(run.path / "replicate_0")
    three = find_ticket(tiny_config(levels=2, branches=["reinit", "random_prune"], replicates=3), data=sample_data)
    assert three.path == run.path
    assert sorted({r for r, _, _ in three.trained}) == [1, 2] and len(three.trained) == 2 * (1 + 2 * 3)
    assert run_files(run.path / "replicate_0") == before
    inits = [three.replicate(r).load_level(0).start["fc1/kernel"] for r in range(3)]
    assert not np.array_equal(inits[0], inits[1]) and not np.array_equal(inits[1], inits[2])  # replicates differ
    assert {row["replicate"] for row in three.summary()} == {0, 1, 2}


@pytest.mark.slow
def test_a_killed_run_with_baselines_resumes_bit_identical_to_an_uninterrupted_one(in_tmp, sample_data):
    config = tiny_config(levels=3, branches=["reinit", "random_prune"], rewind="10it", jit=True)
    with pytest.raises(KeyboardInterrupt):  # dies inside level 2's reinit branch
        find_ticket(config, data=sample_data, callbacks=(kill_after(6 + 3 * 4 + 4 + 2, "killed mid-level"),))
    path = in_tmp / "runs"
    store = RunStore(next(path.iterdir()))
    assert store.replicate(0).levels() == [0, 1, 2] and not store.replicate(0).is_done(2, "reinit")
    resumed = find_ticket(config, data=sample_data)
    assert resumed.trained[0] == (0, 2, "reinit") and len(resumed.trained) == 5
    config.runs_dir = str(in_tmp / "uninterrupted")
    whole = find_ticket(config, data=sample_data)
    assert run_files(whole.path / "replicate_0").keys() == run_files(resumed.path / "replicate_0").keys()
    for level in range(4):
        for branch in (["ticket"] if level == 0 else ["ticket", "reinit", "random_prune"]):
            a, b = whole.replicate(0).load_level(level, branch), resumed.replicate(0).load_level(level, branch)
            for part in ("masks", "start", "final"):
                assert all(np.array_equal(getattr(a, part)[k], getattr(b, part)[k]) for k in getattr(a, part)), \
                    (level, branch, part)
            assert [r["test_loss"] for r in a.metrics["history"]] == [r["test_loss"] for r in b.metrics["history"]]
    assert find_ticket(config, data=sample_data).trained == []  # a finished run trains nothing
    import shutil

    for level in (2, 3):  # delete the last two levels of the finished run, baselines and all, and run again
        shutil.rmtree(resumed.path / "replicate_0" / f"level_{level}")
    config.runs_dir = "runs"
    again = find_ticket(config, data=sample_data)
    assert len(again.trained) == 6
    from helpers import assert_same_run

    assert_same_run(again.path / "replicate_0", whole.path / "replicate_0", skip=())  # byte for byte, wall times apart


def test_late_rewinding_trains_from_step_k_with_the_schedule_at_k_and_baselines(in_tmp, sample_data):
    config = tiny_config(levels=1, branches=["reinit", "random_prune"], rewind="10it")
    config.training.warmup = "20it"
    seen = []

    class LearningRate(keras.callbacks.Callback):  # the rate the optimizer applied in each segment's first call
        def on_train_begin(self, logs=None):
            self.first = True

        def on_train_batch_end(self, batch, logs=None):
            if self.first:
                seen.append(float(self.model.optimizer.learning_rate))
                self.first = False

    run = find_ticket(config, data=sample_data, callbacks=(LearningRate(),))
    rep = run.replicate(0)
    rewind = rep.load_capture(10)
    init = rep.load_level(0).start
    assert not np.array_equal(rewind["fc1/kernel"], init["fc1/kernel"])  # step 10, not step 0
    ticket, reinit, random = (rep.load_level(1, b) for b in ("ticket", "reinit", "random_prune"))
    assert np.array_equal(ticket.start["fc1/kernel"], rewind["fc1/kernel"] * ticket.masks["fc1/kernel"])
    assert [r["step"] for r in ticket.metrics["history"]] == [10, 25, 30]  # trains steps 10..30
    # level 0's segments begin at steps 0, 10, 15; level 1's first at step 10. A call runs 5 steps, so the
    # rate applied last in the first call is the warm-up's at step 4 (5/20), and at 14 (15/20) after rewinding to 10
    assert seen[0] == pytest.approx(1.2e-3 * 5 / 20, rel=1e-6) and seen[3] == pytest.approx(1.2e-3 * 15 / 20, rel=1e-6)
    assert np.array_equal(reinit.masks["fc1/kernel"], ticket.masks["fc1/kernel"])
    assert not np.array_equal(reinit.start["fc1/kernel"], ticket.start["fc1/kernel"])
    assert all(random.masks[k].sum() == ticket.masks[k].sum() for k in ticket.masks)
    assert not np.array_equal(random.masks["fc1/kernel"], ticket.masks["fc1/kernel"])
    assert zeros_outside(random.final, random.masks) and zeros_outside(reinit.final, reinit.masks)
    assert {r["branch"] for r in run.summary()} == {"ticket", "reinit", "random_prune"}


@pytest.mark.slow
def test_global_pruning_one_shot_and_target_hit_the_planned_fraction_exactly(in_tmp, sample_data):
    iterative = plan_ticket(tiny_config(levels=15, strategy="global"), data=sample_data)
    one_shot = plan_ticket(tiny_config(levels=15, strategy="global", one_shot=True), data=sample_data)
    assert one_shot.levels == [0, 15] and one_shot.rows == iterative.rows
    assert one_shot.remaining[15] == pytest.approx(0.8 ** 15, rel=1e-4)
    run = find_ticket(tiny_config(levels=15, strategy="global", one_shot=True), data=sample_data)
    masks = run.replicate(0).load_level(15).masks
    assert sum(int(m.sum()) for m in masks.values()) == sum(iterative.rows[15].values())  # exactly the plan
    assert run.replicate(0).levels() == [0, 15]
    target = plan_ticket(tiny_config(levels=None, strategy="global", rate=0.3, target_remaining=0.1),
                         data=sample_data)
    assert target.remaining[-1] <= 0.1 < target.remaining[-2]
    lr_rewound = find_ticket(tiny_config(levels=2, strategy="global", lr_rewind=True), data=sample_data)
    level1, level2 = lr_rewound.replicate(0).load_level(1), lr_rewound.replicate(0).load_level(2)
    assert sum(int(m.sum()) for m in level2.masks.values()) == sum(lr_rewound.plan.rows[2].values())
    assert np.array_equal(level2.start["fc1/kernel"], level1.final["fc1/kernel"] * level2.masks["fc1/kernel"])


@pytest.mark.parametrize("changes,message", [
    ({"rewind": "2ep"}, "is not before the end of training"),
    ({"unpruned": ["fc7"]}, "no prunable layer named 'fc7'"),
    ({"dense_rate": 1.2}, r"must lie in \[0, 1\)"),
    ({"strategy": "magic"}, "use layerwise or global"),
    ({"strategy": "global", "conv_rate": 0.1}, "does not use conv_rate"),
    ({"strategy": "global", "layer_rates": {"fc1": 0.5}}, "does not use layer_rates"),
    ({"rate": 0.3}, "layerwise does not use rate"),
    ({"levels": -1}, r"must lie in \[0, 200\]"),
])
def test_bad_config_fails_before_training(in_tmp, sample_data, changes, message):
    plan = {k: changes.pop(k) for k in list(changes) if k in ("levels",)}
    with pytest.raises(ConfigError, match=message):
        find_ticket(tiny_config(**{"levels": 2, **plan}, **changes), data=sample_data)
    assert not (in_tmp / "runs").exists()


def test_capture_asked_of_a_finished_dense_level_names_the_replay(tiny_run, sample_data):
    from tflottery.config import RunConfig

    config = RunConfig.from_dict(tiny_run.config.to_dict())
    config.plan.capture = ["10it"]
    before = run_files(tiny_run.path)
    with pytest.raises(ConfigError, match=r"--capture: level 0 of replicate 0 .* steps \[10\] cannot be kept now.*"
                                          r"--rewind=10it --replicate=0 --recapture"):
        find_ticket(config, data=sample_data)
    assert run_files(tiny_run.path) == before


def test_dry_run_and_target_sparsity(sample_data):
    plan = plan_ticket(tiny_config(levels=None, target_remaining=0.036), data=sample_data)
    assert plan.levels == list(range(16)) and round(100 * plan.remaining[-1], 1) == 3.6
    one_shot = plan_ticket(tiny_config(levels=15, one_shot=True), data=sample_data)
    assert one_shot.levels == [0, 15] and round(100 * one_shot.remaining[15], 1) == 3.6
    assert "51.3%" in plan_ticket(tiny_config(levels=3), data=sample_data).table()


@pytest.mark.slow
def test_any_functional_model_is_accepted_and_its_replicates_are_seeded(in_tmp, sample_data):
    def mine():
        inputs = keras.Input((28, 28, 1), name="image")
        x = keras.layers.Conv2D(4, 3, name="c")(inputs)  # unseeded initialisers
        x = keras.layers.BatchNormalization(name="bn")(x)
        x = keras.layers.Flatten(name="flat")(keras.layers.ReLU(name="relu")(x))
        return keras.Model(inputs, keras.layers.Dense(10, name="head")(x), name="mine")

    run = find_ticket(tiny_config(levels=1, conv_rate=0.5), model=mine(), data=sample_data)
    masks = run.replicate(0).load_level(1).masks
    assert set(masks) == {"c/kernel", "head/kernel"}  # never BN weights or biases
    assert masks["c/kernel"].mean() == pytest.approx(0.5, abs=0.01)
    assert masks["head/kernel"].mean() == pytest.approx(0.9, abs=0.001)
    again = find_ticket(tiny_config(levels=1, conv_rate=0.5), model=mine(), data=sample_data)
    assert again.path == run.path and again.trained == []  # same architecture and seed: the same run
    config = tiny_config(levels=0, conv_rate=0.5)
    config.runs_dir = "elsewhere"
    fresh = find_ticket(config, model=mine(), data=sample_data)  # its initialisers are re-seeded: same init
    assert np.array_equal(fresh.replicate(0).load_level(0).start["c/kernel"],
                          run.replicate(0).load_level(0).start["c/kernel"])


def test_models_that_do_not_fit_the_data_are_refused(in_tmp, sample_data):
    inputs = keras.Input((28, 28, 1))
    wrong_outputs = keras.Model(inputs, keras.layers.Dense(7, name="head")(keras.layers.Flatten()(inputs)))
    with pytest.raises(ModelError, match="has 7 outputs but mnist .*has 10 classes"):
        find_ticket(tiny_config(), model=wrong_outputs, data=sample_data)
    odd_name = keras.Model(inputs, keras.layers.Dense(10, name="my__head")(keras.layers.Flatten()(inputs)))
    with pytest.raises(ModelError, match="contain '__'"):
        find_ticket(tiny_config(), model=odd_name, data=sample_data)


class _StopsAt(keras.callbacks.Callback):
    """What EarlyStopping does, after its `calls`-th compiled call (steps_per_execution steps each): ends the fit."""

    def __init__(self, calls: int):
        super().__init__()
        self.left = calls

    def on_train_batch_end(self, batch, logs=None):
        self.left -= 1
        if self.left == 0:
            self.model.stop_training = True


@pytest.mark.parametrize("calls", [1, 3])  # within an evaluation epoch (step 5), and at its end (step 15)
def test_a_callback_that_stops_the_fit_is_refused_and_the_run_resumes_whole_without_it(in_tmp, sample_data, calls):
    config = tiny_config(levels=1)  # 5 steps a call, evaluated every 15 of 30
    with pytest.raises(RunError, match=f"a callback stopped training at step {5 * calls} of a level that ends at step 30"):
        find_ticket(config, data=sample_data, callbacks=(_StopsAt(calls),))
    run = find_ticket(config, data=sample_data)
    assert [r["step"] for r in run.replicate(0).metrics(0)["history"]] == [0, 15, 30]
    assert run.trained == [(0, 0, "ticket"), (0, 1, "ticket")]


class _ZerosEveryStep(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.checked = 0

    def on_train_batch_end(self, batch, logs=None):
        from tflottery.models import get_weights
        from tflottery.pruning.wrap import get_masks

        weights, masks = get_weights(self.model), get_masks(self.model)
        assert zeros_outside(weights, masks), f"pruned weights revived after step {batch}"
        self.checked += 1


@pytest.mark.slow
def test_zeros_after_every_optimizer_step_with_momentum_and_tensorboard_logs(in_tmp, sample_data):
    config = tiny_config(levels=2, jit=True)
    config.training.optimizer, config.training.momentum, config.training.lr = "sgd", 0.9, 0.1
    config.training.steps_per_execution, config.training.tensorboard = 1, True
    checker = _ZerosEveryStep()
    run = find_ticket(config, data=sample_data, callbacks=(checker,))
    assert checker.checked == 3 * 30  # every step of every level was inspected
    assert list((run.path / "replicate_0" / "level_2" / "ticket" / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_banner_progress_and_quiet_mode(in_tmp, sample_data, capsys, monkeypatch):
    from tflottery.engine.trainer import fit

    monkeypatch.setattr(fit, "PROGRESS_EVERY_S", 0.0)  # every compiled call counts as "long"
    config = tiny_config(levels=1)
    config.training.verbose = True
    config.training.eval_every = "30it"  # one evaluation a level: the lines come from inside fit
    find_ticket(config, data=sample_data)
    out = capsys.readouterr().out
    assert "step 10/30  test acc" in out and "(last evaluated)" in out and "s left in this level" in out
    assert "level  1/1 ticket" in out and "weights remaining" in out and "ETA" in out
    assert "run runs/lenet_300_100-mnist-" in out and "2 branch-levels to train" in out
    config.plan.levels = 2
    find_ticket(config, data=sample_data)
    assert "resuming at replicate 0, level 2 (ticket)" in capsys.readouterr().out
    config.training.verbose, config.runs_dir = False, str(in_tmp / "quiet")
    find_ticket(config, data=sample_data)
    assert capsys.readouterr().out == ""


def test_a_run_of_the_old_layout_gets_one_clear_error(in_tmp, sample_data):
    old = in_tmp / "runs" / "lenet_300_100-mnist-0123456789ab"
    (old / "level_0").mkdir(parents=True)
    (old / "config.json").write_text("{}")
    with pytest.raises(RunError, match="written by tflottery 0.1.*Move it aside"):
        RunStore.open(old)


@pytest.mark.slow
def test_a_run_in_use_by_another_writer_is_refused(in_tmp, sample_data):
    config = tiny_config(levels=1)
    run = find_ticket(config, data=sample_data)
    holder = RunStore(run.path).lock()
    try:
        config.plan.levels = 2
        with pytest.raises(RunError, match="is in use by process"):
            find_ticket(config, data=sample_data)
    finally:
        holder.unlock()
    assert find_ticket(config, data=sample_data).trained == [(0, 2, "ticket")]
