"""The run's kernels: Adam fused into one kernel computes Adam, and a run keeps the kernels it began with."""
import json

import numpy as np
import pytest

from tflottery.core.errors import ConfigError, RunError
from tflottery.engine.store import RunStore


def _adam_steps(optimizer_class, steps=25):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    variable = tf.Variable(rng.normal(size=(60, 30)).astype(np.float32))
    optimizer = optimizer_class(1.2e-3)
    optimizer.jit_compile = False
    for _ in range(steps):
        optimizer.apply_gradients([(tf.constant(rng.normal(size=(60, 30)).astype(np.float32)), variable)])
    return variable.numpy()


def test_fused_adam_is_adam_to_float32_rounding():
    from tflottery.core.keras_compat import keras
    from tflottery.engine.optim import FusedAdam

    fused, plain = _adam_steps(FusedAdam), _adam_steps(keras.optimizers.Adam)
    start = _adam_steps(keras.optimizers.Adam, steps=0)
    moved = np.abs(plain - start).max()
    assert moved > 0.02  # 25 steps of about lr each
    assert np.abs(fused - plain).max() < 1e-6  # the same formula, rounded differently


def test_a_run_records_its_kernels_at_the_first_training_and_keeps_them(tmp_path):
    store = RunStore(tmp_path / "run")
    store.path.mkdir()
    assert store.kernels("auto", default=False) is False
    assert json.loads((store.path / "numerics.json").read_text()) == {"xla": False}
    assert store.kernels("auto", default=True) is False  # on a GPU later: still the graph's kernels
    assert store.kernels(False, default=True) is False
    with pytest.raises(ConfigError, match="--jit_compile=true.*numerics.json.*Drop --jit_compile"):
        store.kernels(True, default=True)


def test_a_run_trained_before_the_record_keeps_xla(tmp_path):
    store = RunStore(tmp_path / "run")
    (store.path / "replicate_0" / "level_0").mkdir(parents=True)
    assert store.kernels("auto", default=False) is True  # 0.2 trained under XLA
    assert json.loads((store.path / "numerics.json").read_text()) == {"xla": True}


def test_a_run_trained_before_the_record_without_xla_says_so_with_the_flag(tmp_path):
    store = RunStore(tmp_path / "run")
    (store.path / "replicate_0" / "level_0").mkdir(parents=True)
    assert store.kernels(False, default=True) is False


def test_a_damaged_record_is_refused(tmp_path):
    store = RunStore(tmp_path / "run")
    store.path.mkdir()
    (store.path / "numerics.json").write_text('{"xla": "maybe"}')
    with pytest.raises(RunError, match="damaged"):
        store.kernels("auto", default=False)


@pytest.mark.parametrize("value,expected", [("auto", "auto"), ("false", False), (1, True)])
def test_jit_compile_takes_auto_or_a_switch(value, expected):
    from tflottery.config import TrainingConfig

    config = TrainingConfig(jit_compile=value)
    config.validate()
    assert config.jit_compile == expected


def test_jit_compile_refuses_a_word_it_does_not_know():
    from tflottery.config import TrainingConfig

    with pytest.raises(ConfigError, match="must be auto, true or false"):
        TrainingConfig(jit_compile="maybe").validate()
