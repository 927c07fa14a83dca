"""Population training: units trained as one program are, bit for bit, the units trained one by one."""
import json

import numpy as np
import pytest

from helpers import assert_same_run, kill_after, tiny_config
from tflottery import find_ticket
from tflottery.core.keras_compat import keras


def _both(tmp_path, data, levels, branches, jit, model=None):
    runs = {}
    for population in (1, 16):
        config = tiny_config(levels=levels, branches=branches, replicates=2, rewind="10it", jit=jit,
                             population=population)
        config.runs_dir = str(tmp_path / f"p{population}")
        runs[population] = find_ticket(config, data=data, model=model() if model else None)
    assert runs[1].path.name == runs[16].path.name  # grouping is no part of a run's identity
    assert len(runs[16].trained) == 2 * (1 + levels * (1 + len(branches)))
    assert_same_run(runs[1].path, runs[16].path)


def test_a_population_writes_the_bytes_one_unit_at_a_time_writes(tmp_path):
    from tflottery.config import DataConfig
    from tflottery.data import load

    def small():
        inputs = keras.Input((28, 28, 1), name="image")
        hidden = keras.layers.Dense(16, activation="relu", name="fc")(keras.layers.Flatten(name="flat")(inputs))
        return keras.Model(inputs, keras.layers.Dense(10, name="out")(hidden), name="small")

    data = load(DataConfig(dataset="mnist", source="synthetic", validation=150), batch_size=50)
    _both(tmp_path, data, 1, ["reinit", "random_prune"], jit=False, model=small)


@pytest.mark.slow
@pytest.mark.parametrize("jit,branches", [(False, ["reinit", "random_prune", "supermask"]),
                                          (True, ["reinit", "random_prune"])])
def test_every_per_level_branch_of_two_replicates_in_groups_is_the_run_of_one_at_a_time(tmp_path, sample_data, jit,
                                                                                        branches):
    _both(tmp_path, sample_data, 2, branches, jit)


@pytest.mark.slow
def test_a_run_killed_mid_group_resumes_with_another_population_to_the_same_bytes(tmp_path, sample_data):
    def config(population, where):
        c = tiny_config(levels=2, branches=["reinit", "random_prune"], replicates=2, population=population)
        c.runs_dir = str(tmp_path / where)
        return c

    with pytest.raises(KeyboardInterrupt):  # dies inside level 1's group of 6 units
        find_ticket(config(16, "killed"), data=sample_data, callbacks=(kill_after(8, "killed mid-group"),))
    resumed = find_ticket(config(2, "killed"), data=sample_data)
    assert resumed.trained[0][1] == 1  # level 0 survived the kill; level 1 trains again, in pairs
    whole = find_ticket(config(1, "whole"), data=sample_data)
    assert_same_run(whole.path, resumed.path)


@pytest.mark.slow
def test_run_model_is_the_last_levels_trained_ticket(in_tmp, sample_data):
    run = find_ticket(tiny_config(levels=1, branches=["supermask"]), data=sample_data)
    record = run.replicate(0).load_level(1)
    from tflottery.models import get_weights
    from tflottery.pruning.wrap import get_masks

    weights, masks = get_weights(run.model), get_masks(run.model)
    assert all(np.array_equal(weights[k], record.final[k]) for k in record.final)  # not the supermask's weights
    assert all(np.array_equal(masks[k], record.masks[k]) for k in record.masks)
    x, y = sample_data.arrays["test"]
    accuracy = float((run.model.predict(x / 255.0, verbose=0).argmax(1) == y).mean())
    assert accuracy == pytest.approx(record.metrics["final_test_accuracy"], abs=1e-9)


TRAIN_IN_A_FRESH_PROCESS = """
import sys
sys.path.insert(0, "tests")
from helpers import tiny_config
from tflottery import find_ticket
config = tiny_config(levels=1, branches=["reinit"], replicates=2, jit="auto", population=16)
config.runs_dir = sys.argv[1]
find_ticket(config)
"""


@pytest.mark.parametrize("threads", [("2", "1")])
def test_the_threads_a_process_trains_with_leave_every_byte_alone(tmp_path, threads):
    """tflottery sets one thread per op and cores ops at once (`threads_for_towers`); a process that set its
    own (here 2 per op, one at a time) trains the same bytes."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_NUM_")}
    runs = {}
    for name, extra in (("ours", {}), ("theirs", {"TF_NUM_INTRAOP_THREADS": threads[0],
                                                  "TF_NUM_INTEROP_THREADS": threads[1]})):
        runs[name] = tmp_path / name
        subprocess.run([sys.executable, "-c", TRAIN_IN_A_FRESH_PROCESS, str(runs[name])], env={**env, **extra},
                       check=True, timeout=300)
    (ours,), (theirs,) = (list(p.iterdir()) for p in runs.values())
    assert json.loads((ours / "numerics.json").read_text()) == {"xla": False}  # auto on a CPU
    assert_same_run(ours, theirs)


@pytest.mark.parametrize("jit", [False, True])
def test_towers_that_read_zeroed_weights_as_they_are_train_the_bytes_of_weight_times_mask(tmp_path, sample_data,
                                                                                          monkeypatch, jit):
    from tflottery.engine.trainer import population

    runs = {}
    for kept in (True, False):
        monkeypatch.setattr(population, "ZEROS_KEPT", kept)
        config = tiny_config(levels=2, branches=["random_prune"], jit=jit)
        config.runs_dir = str(tmp_path / str(kept))
        runs[kept] = find_ticket(config, data=sample_data).path
    assert_same_run(runs[True], runs[False])
