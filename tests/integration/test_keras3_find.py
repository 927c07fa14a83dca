"""`find_ticket(config, model=keras3_model)`: IMP through the Keras 3 trainer, on the TensorFlow backend and on
JAX, each in processes of its own. Three levels with reinit and random pruning; a run killed with SIGKILL
mid-run and resumed is byte for byte the uninterrupted one; its ticket loads in tf_keras, plain TensorFlow and
Keras 3 with the same logits; the run agrees with the tf_keras trainer's run of the same network and batches."""
import importlib.util
import json

import numpy as np
import pytest

from helpers import assert_same_run, zeros_outside
from keras3_runs import find_in, only_run

pytestmark = pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_keras3_imp_resumes_after_a_kill_to_the_same_bytes_and_ships_a_ticket(tmp_path, backend):
    if backend == "jax" and importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: pip install 'tflottery[jax]'")
    whole = find_in(backend, tmp_path / "whole", "export")
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = find_in(backend, tmp_path / "killed", "kill")
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = find_in(backend, tmp_path / "killed", "run", population=3)  # JAX: in groups this time
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 0 < int(resumed.stdout.split()[-1]) < 10  # of 10 units: only what the killed process had not stored
    a, b = only_run(tmp_path / "whole"), only_run(tmp_path / "killed")
    assert a.name == b.name
    assert_same_run(a, b)

    from tflottery.engine.store import RunStore

    store = RunStore.open(a)
    identity = json.loads((a / "spec.json").read_text())["identity"]
    assert identity["training"]["keras"] == 3 and identity["training"]["backend"] == backend
    rep = store.replicate(0)
    assert rep.levels() == [0, 1, 2, 3]
    for level in (1, 2, 3):
        for branch in ("ticket", "reinit", "random_prune"):
            record = rep.load_level(level, branch)
            assert zeros_outside(record.final, record.masks), (level, branch)
            assert record.metrics["remaining"] == pytest.approx(rep.load_level(level).metrics["remaining"])

    import tensorflow as tf

    from tflottery import load_ticket

    images, keras3_logits = np.load(tmp_path / "whole" / "images.npy"), np.load(tmp_path / "whole" / "keras3_logits.npy")
    ticket = tmp_path / "whole" / "ticket"
    tolerance = 1e-6 if backend == "tensorflow" else 1e-4  # XLA on JAX rounds otherwise
    assert np.abs(load_ticket(ticket)(images).numpy() - keras3_logits).max() < tolerance
    served = tf.saved_model.load(str(ticket / "saved_model")).signatures["serving_default"](tf.constant(images))
    assert np.abs(next(iter(served.values())).numpy() - keras3_logits).max() < tolerance
