"""A user's own token-id model (Embedding, MultiHeadAttention, LSTM: every target masked by variable) on the user's
own numpy arrays, in processes of its own: killed with SIGKILL mid-run and run again, it is byte for byte the
uninterrupted run (other arrays naming another run: tests/unit/data/test_from_arrays.py)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_same_run, zeros_outside

pytestmark = pytest.mark.slow

SCRIPT = """
import os, signal, sys
import numpy as np
from tflottery import find_ticket
from tflottery.core.keras_compat import keras

runs, mode, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(seed)
tokens = rng.integers(1, 60, size=(1200, 10))
labels = (tokens[:, :3].sum(axis=1) > 90).astype(np.int64)
inputs = keras.Input((10,), dtype="int32")
x = keras.layers.Embedding(60, 16, name="embed")(inputs)
x = keras.layers.MultiHeadAttention(2, 8, name="mha")(x, x)
x = keras.layers.LSTM(12, name="lstm")(x)
model = keras.Model(inputs, keras.layers.Dense(2, name="output")(x), name="seq")


class Kill(keras.callbacks.Callback):
    seen = 0

    def on_train_batch_end(self, batch, logs=None):
        Kill.seen += 1
        if Kill.seen == 9:
            os.kill(os.getpid(), signal.SIGKILL)


config = {"plan": {"levels": 2, "branches": ["reinit"]}, "runs_dir": runs,
          "training": {"steps": "40it", "eval_every": "20it", "batch_size": 40, "verbose": False,
                       "jit_compile": False, "steps_per_execution": 5}}
run = find_ticket(config, model=model, data=(tokens, labels), callbacks=[Kill()] if mode == "kill" else [])
print(run.path)
"""


def find(runs, mode, seed=0):
    return subprocess.run([sys.executable, "-c", SCRIPT, str(runs), mode, str(seed)], capture_output=True, text=True,
                          timeout=600)


def test_a_token_model_on_own_arrays_resumes_after_sigkill_to_the_same_bytes(tmp_path):
    whole = find(tmp_path / "whole", "run")
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = find(tmp_path / "killed", "kill")
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = find(tmp_path / "killed", "run")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = Path(whole.stdout.split()[-1]), Path(resumed.stdout.split()[-1])
    assert a.name == b.name
    assert_same_run(b, a)

    from tflottery.engine.store import RunStore

    record = RunStore.open(a).replicate(0).load_level(2)
    assert zeros_outside(record.final, record.masks)
    assert {k for k, m in record.masks.items() if not m.all()} == {
        "embed/embeddings", "mha/query/kernel", "mha/key/kernel", "mha/value/kernel", "mha/attention_output/kernel",
        "lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel", "output/kernel"}


def test_every_convolution_kind_finds_a_ticket_that_round_trips(tmp_path, sample_data):
    """Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D (its depthwise and pointwise kernels) and Dense through
    find_ticket: 2 levels at the plan's counts, exact zeros, "remaining" equal to a count of the masks, and the
    exported ticket rebuilt from the allowlist with the trained logits."""
    from tflottery import export_ticket, find_ticket, load_ticket
    from tflottery.core.keras_compat import keras
    from tflottery.models.weights import set_weights

    def model():
        inputs = keras.Input((28, 28, 1))
        x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
        x = keras.layers.DepthwiseConv2D(3, name="depthwise")(x)
        x = keras.layers.SeparableConv2D(6, 3, name="separable")(x)
        x = keras.layers.Reshape((22, 22 * 6), name="rows")(x)
        x = keras.layers.Conv1D(4, 3, name="conv1d")(x)
        x = keras.layers.Flatten(name="flat")(x)
        return keras.Model(inputs, keras.layers.Dense(10, name="output")(x), name="convs")

    from helpers import tiny_config

    config = tiny_config(levels=2)
    config.runs_dir = str(tmp_path / "runs")
    run = find_ticket(config, model=model(), data=sample_data)
    plan = run.plan.rows
    for level in (1, 2):
        record = run.replicate(0).load_level(level)
        assert {k: int(m.sum()) for k, m in record.masks.items()} == plan[level]
        assert zeros_outside(record.final, record.masks)
        kept, size = sum(int(m.sum()) for m in record.masks.values()), sum(m.size for m in record.masks.values())
        assert record.metrics["remaining"] == pytest.approx(kept / size)
    assert set(plan[2]) == {"conv/kernel", "depthwise/depthwise_kernel", "separable/depthwise_kernel",
                            "separable/pointwise_kernel", "conv1d/kernel", "output/kernel"}
    ticket = export_ticket(run, out=str(tmp_path / "ticket"))
    reference = model()
    set_weights(reference, run.replicate(0).load_level(2).final)
    x = sample_data.arrays["test"][0][:16].astype("float32") / 255.0
    assert np.abs(load_ticket(ticket)(x).numpy() - reference(x).numpy()).max() < 1e-5


KERAS3_SCRIPT = """
import sys
import numpy as np
import tflottery
import keras
from tflottery import find_ticket

runs, population = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
tokens = rng.integers(1, 60, size=(600, 10))
labels = (tokens[:, :3].sum(axis=1) > 90).astype(np.int64)
keras.utils.set_random_seed(0)
inputs = keras.Input((10,), name="tokens")
x = keras.layers.Embedding(60, 16, name="embed")(inputs)
x = keras.layers.MultiHeadAttention(2, 8, name="attention")(x, x, use_causal_mask=True)
x = keras.layers.LSTM(12, name="lstm")(x)
model = keras.Model(inputs, keras.layers.Dense(2, name="output")(x), name="k3seq")
config = {"plan": {"levels": 2, "branches": ["reinit"], "population": population}, "runs_dir": runs,
          "training": {"steps": "20it", "eval_every": "10it", "batch_size": 40, "verbose": False, "jit_compile": False}}
print(find_ticket(config, model=model, data=(tokens, labels)).path)
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_keras3_recurrent_model_prunes_by_variable_and_a_population_is_each_unit_alone(tmp_path, backend):
    """A Keras 3 Embedding + causal MultiHeadAttention + LSTM model on the user's arrays through find_ticket: its
    embedding, the four attention projections and both LSTM kernels pruned at the plan's counts with exact zeros; on JAX, a population of 3 (the towers, an LSTM's random
    generator state included) is byte for byte the units one at a time."""
    import importlib.util
    import os

    if backend == "jax" and importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: pip install 'tflottery[jax]'")
    env = {**os.environ, "KERAS_BACKEND": backend}
    paths = []
    for where, population in (("alone", 1), ("grouped", 3))[:2 if backend == "jax" else 1]:  # TF: one unit a time
        done = subprocess.run([sys.executable, "-c", KERAS3_SCRIPT, str(tmp_path / where), str(population)],
                              capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        paths.append(Path(done.stdout.split()[-1]))
    if len(paths) == 2:
        assert paths[0].name == paths[1].name
        assert_same_run(paths[1], paths[0])
    from tflottery.engine.store import RunStore

    record = RunStore.open(paths[0]).replicate(0).load_level(2)
    assert list(record.masks) == ["embed/embeddings", "attention/query/kernel", "attention/key/kernel",
                                  "attention/value/kernel", "attention/attention_output/kernel",
                                  "lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel", "output/kernel"]
    assert all(abs(float(m.mean()) - 0.64) < 0.005 for k, m in record.masks.items() if k != "output/kernel")
    assert zeros_outside(record.final, record.masks)
