import numpy as np
import pytest

from conftest import tiny_config, zeros_outside
from tflottery.config import ConfigError
from tflottery.lottery import find_ticket
from tflottery.runs import read_npz
from tflottery.tickets import keras


@pytest.mark.parametrize("optimizer", [{"optimizer": "adam"}, {"optimizer": "sgd", "momentum": 0.9, "lr": 0.05}])
def test_imp_prunes_exactly_keeps_zeros_and_rewinds_bit_for_bit(in_tmp, sample_data, optimizer):
    config = tiny_config(levels=3)
    for key, value in optimizer.items():
        setattr(config.training, key, value)
    run = find_ticket(config, data=sample_data)
    init = read_npz(run.path / "level_0" / "start.npz")
    previous = None
    for level in range(4):
        record = run.dir.load_level(level)
        assert zeros_outside(record.final, record.masks)  # pruned weights exactly zero after training
        if previous is not None:
            assert all(np.all(record.masks[k] <= previous[k]) for k in previous)  # nested
            assert sum(m.sum() for m in record.masks.values()) < sum(m.sum() for m in previous.values())
        for name, value in record.start.items():  # survivors start at the rewind point, bit for bit
            mask = record.masks.get(name)
            expected = init[name] * mask if mask is not None else init[name]
            assert np.array_equal(value, expected), (level, name)
        previous = record.masks
    # The paper's per-layer counts (dense 20%, output 10%), from trained weights:
    counts = {k: int(m.sum()) for k, m in run.dir.load_level(3).masks.items()}
    assert counts == {"fc1/kernel": 120422, "fc2/kernel": 15360, "output/kernel": 729}
    # The model really holds a sparse ticket: count zeros in its variables.
    kernel = run.model.get_layer("prune_low_magnitude_fc1").layer.kernel.numpy()
    assert abs((kernel == 0).mean() - (1 - 120422 / 235200)) < 1e-6
    metrics = run.dir.metrics(3)
    assert 0.5 < metrics["final_test_accuracy"] <= 1.0 and metrics["early_stop_step"] in (0, 15, 30)
    assert [row["step"] for row in metrics["history"]] == [0, 15, 30]


def test_same_seed_same_masks_and_other_seed_other_masks(tmp_path, sample_data):
    masks = []
    for seed, where in ((0, "a"), (0, "b"), (1, "c")):
        config = tiny_config(levels=1)
        config.seed, config.runs_dir = seed, str(tmp_path / where)
        masks.append(find_ticket(config, data=sample_data).dir.load_level(1).masks)
    assert all(np.array_equal(masks[0][k], masks[1][k]) for k in masks[0])
    assert not np.array_equal(masks[0]["fc1/kernel"], masks[2]["fc1/kernel"])


class _Kill(keras.callbacks.Callback):
    def __init__(self, after_batches):
        super().__init__()
        self.left = after_batches

    def on_train_batch_end(self, batch, logs=None):
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt("killed mid-level")


def test_killed_run_resumes_without_losing_or_repeating_a_level(in_tmp, sample_data):
    config = tiny_config(levels=3)
    with pytest.raises(KeyboardInterrupt):  # level 0 and 1 finish, level 2 dies half-way
        find_ticket(config, data=sample_data, callbacks=(_Kill(after_batches=2 * 6 + 3),))
    run_dir = in_tmp / "runs" / config.run_name()
    finished = sorted(p.parent.name for p in run_dir.glob("level_*/metrics.json"))
    assert finished == ["level_0", "level_1"]
    before = (run_dir / "level_1" / "final.npz").read_bytes()
    run = find_ticket(config, data=sample_data)
    assert run.trained == [(2, "ticket"), (3, "ticket")]
    assert (run_dir / "level_1" / "final.npz").read_bytes() == before
    assert run.dir.levels() == [0, 1, 2, 3]
    assert find_ticket(config, data=sample_data).trained == []  # a finished run trains nothing
    config.runs_dir = str(in_tmp / "uninterrupted")
    whole = find_ticket(config, data=sample_data).dir.load_level(3)
    resumed = run.dir.load_level(3)
    assert all(np.array_equal(whole.final[k], resumed.final[k]) for k in whole.final)  # resuming changes nothing


def test_late_rewinding_and_baselines(in_tmp, sample_data):
    config = tiny_config(levels=1, rewind="10it", branches=["reinit", "random_prune"])
    run = find_ticket(config, data=sample_data)
    rewind = read_npz(run.path / "rewind_point.npz")
    init = read_npz(run.path / "level_0" / "start.npz")
    assert not np.array_equal(rewind["fc1/kernel"], init["fc1/kernel"])  # step 10, not step 0
    ticket, reinit, random = (run.dir.load_level(1, b) for b in ("ticket", "reinit", "random_prune"))
    assert np.array_equal(ticket.start["fc1/kernel"], rewind["fc1/kernel"] * ticket.masks["fc1/kernel"])
    assert np.array_equal(reinit.masks["fc1/kernel"], ticket.masks["fc1/kernel"])
    assert not np.array_equal(reinit.start["fc1/kernel"], ticket.start["fc1/kernel"])
    assert all(random.masks[k].sum() == ticket.masks[k].sum() for k in ticket.masks)
    assert not np.array_equal(random.masks["fc1/kernel"], ticket.masks["fc1/kernel"])
    assert zeros_outside(random.final, random.masks) and zeros_outside(reinit.final, reinit.masks)
    assert {r["branch"] for r in run.summary()} == {"ticket", "reinit", "random_prune"}


def test_global_pruning_and_lr_rewinding(in_tmp, sample_data):
    run = find_ticket(tiny_config(levels=2, strategy="global", lr_rewind=True), data=sample_data)
    masks = run.dir.load_level(2).masks
    total = sum(m.size for m in masks.values())
    assert abs(sum(m.sum() for m in masks.values()) / total - 0.8 ** 2) < 1e-4
    level1 = run.dir.load_level(1)
    level2 = run.dir.load_level(2)
    # learning-rate rewinding continues from the trained weights, masked
    assert np.array_equal(level2.start["fc1/kernel"], level1.final["fc1/kernel"] * level2.masks["fc1/kernel"])


@pytest.mark.parametrize("changes,message", [
    ({"rewind": "2ep"}, "lies beyond the training length"),
    ({"unpruned": ["fc7"]}, "no prunable layer named 'fc7'"),
    ({"dense_rate": 1.2}, r"must lie in \[0, 1\)"),
    ({"strategy": "magic"}, "use layerwise or global"),
    ({"levels": 0}, "must be >= 1"),
])
def test_bad_config_fails_before_training(in_tmp, sample_data, changes, message):
    config = tiny_config(**changes)
    with pytest.raises(ConfigError, match=message):
        find_ticket(config, data=sample_data)
    assert not (in_tmp / "runs").exists()


def test_dry_run_and_target_sparsity(sample_data):
    plan = find_ticket(tiny_config(levels=None, target_remaining=0.036), data=sample_data, dry_run=True)
    assert plan.levels == 15 and round(100 * plan.rows[-1]["remaining"], 1) == 3.6
    one_shot = find_ticket(tiny_config(levels=15, one_shot=True), data=sample_data, dry_run=True)
    assert one_shot.levels == 1 and round(100 * one_shot.rows[-1]["remaining"], 1) == 3.6
    assert "51.3%" in find_ticket(tiny_config(levels=3), data=sample_data, dry_run=True).table()


def test_any_functional_model_is_accepted(in_tmp, sample_data):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, name="c")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten()(keras.layers.ReLU()(x))
    model = keras.Model(inputs, keras.layers.Dense(10, name="head")(x), name="mine")
    run = find_ticket(tiny_config(levels=1, conv_rate=0.5), model=model, data=sample_data)
    masks = run.dir.load_level(1).masks
    assert set(masks) == {"c/kernel", "head/kernel"}  # never BN weights or biases
    assert masks["c/kernel"].mean() == pytest.approx(0.5, abs=0.01)
    assert masks["head/kernel"].mean() == pytest.approx(0.9, abs=0.001)


class _ZerosEveryStep(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.checked = 0

    def on_train_batch_end(self, batch, logs=None):
        from tflottery.pruning.wrap import get_masks, get_weights

        weights, masks = get_weights(self.model), get_masks(self.model)
        assert zeros_outside(weights, masks), f"pruned weights revived after step {batch}"
        self.checked += 1


def test_zeros_after_every_optimizer_step_with_momentum_and_tensorboard_logs(in_tmp, sample_data):
    config = tiny_config(levels=2)
    config.training.optimizer, config.training.momentum, config.training.lr = "sgd", 0.9, 0.1
    config.training.steps_per_execution, config.training.tensorboard = 1, True
    checker = _ZerosEveryStep()
    run = find_ticket(config, data=sample_data, callbacks=(checker,))
    assert checker.checked == 3 * 30  # every step of every level was inspected
    assert list((run.path / "level_2" / "tensorboard").glob("events.out.tfevents.*"))


def test_long_levels_print_progress_and_quiet_mode_prints_nothing(in_tmp, sample_data, capsys, monkeypatch):
    from tflottery import training

    monkeypatch.setattr(training, "PROGRESS_EVERY_S", 0.0)  # every evaluation counts as "long"
    config = tiny_config(levels=1)
    config.training.verbose = True
    find_ticket(config, data=sample_data)
    out = capsys.readouterr().out
    assert "step 15/30  test acc" in out and "s left in this level" in out
    assert "level  1/1 ticket" in out and "weights remaining" in out and "ETA" in out
    config.training.verbose, config.runs_dir = False, str(in_tmp / "quiet")
    find_ticket(config, data=sample_data)
    assert capsys.readouterr().out == ""


def test_resume_rewinds_to_the_recorded_initialisation_of_an_unseeded_model(in_tmp, sample_data):
    def unseeded():
        inputs = keras.Input((28, 28, 1), name="image")  # named: auto names differ within one process
        hidden = keras.layers.Dense(32, activation="relu", name="fc")(keras.layers.Flatten(name="flat")(inputs))
        return keras.Model(inputs, keras.layers.Dense(10, name="head")(hidden), name="unseeded")

    config = tiny_config(levels=2)
    with pytest.raises(KeyboardInterrupt):
        find_ticket(config, model=unseeded(), data=sample_data, callbacks=(_Kill(after_batches=2 * 6 + 3),))
    assert config.model.name == "lenet_300_100"  # the caller's config is not modified
    run = find_ticket(config, model=unseeded(), data=sample_data)  # a new model: other random init
    assert run.trained == [(2, "ticket")]
    init = run.dir.load_level(0).start
    level2 = run.dir.load_level(2)
    assert np.array_equal(level2.start["fc/kernel"], init["fc/kernel"] * level2.masks["fc/kernel"])
