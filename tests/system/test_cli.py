import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "tflottery.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_the_commands():
    result = _cli("--help")
    out = result.stdout + result.stderr
    for command in ("find", "transfer", "export", "convert", "plot", "recipes", "data", "tune"):
        assert command in out


def test_find_help_explains_every_flag():
    result = _cli("find", "--help")
    out = result.stdout + result.stderr
    for flag in ("--dense_rate", "--rewind", "--strategy", "--dry_run", "--steps_per_execution", "--labels"):
        assert flag in out


@pytest.mark.parametrize("args,message", [
    (["find", "--levls=3"], "Unknown flag --levls"),
    (["find", "--dry_run", "--rewind=50ep"], "is not before the end of training"),
    (["export", "no/such/run"], "is not a run directory"),
    (["plot"], "plot needs at least one run directory"),
])
def test_errors_are_one_line_not_a_traceback(in_tmp, args, message):
    result = _cli(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_dry_run_prints_the_plan(in_tmp):
    out = _cli("find", "--dry_run", "--levels=16").stdout
    assert "51.3%" in out and "3.6%" in out and "2.9%" in out


def test_recipes_and_data_listings():
    assert "task2" in _cli("recipes").stdout
    data = _cli("data").stdout
    assert "mnist" in data and "sample" in data


def test_tune_runs_a_small_sweep_and_names_the_best(in_tmp):
    result = _cli("tune", "--max_trials=2", "--levels=1", "--steps=20it", "--eval_every=10it", "--validation=300",
                  "--branches=[]", "--verbose=False", timeout=600)
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr[-2000:]
    assert "best of 2 trials (accuracy_at)" in result.stdout


def test_the_main_job_prints_no_tensorflow_start_up_lines_and_no_warnings(in_tmp):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-m", "tflottery.recipes.task2", "--levels=1", "--steps=20it",
                             "--eval_every=10it"], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""  # no C++ start-up lines, no CUDA probe, no TFDS or default-settings warning
    assert "[tflottery] run runs/lenet_300_100-mnist-l01234-" in result.stdout and "sample" in result.stdout


def test_find_trains_a_zoo_model_on_keras3_and_jax_from_the_flags_alone(in_tmp):
    """No KERAS_BACKEND in the environment: --backend=jax must reach Keras 3 before tfmot loads it."""
    import importlib.util
    import json

    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: pip install 'tflottery[jax]'")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-m", "tflottery.cli", "find", "--keras=3", "--backend=jax",
                             "--dataset=mnist", "--validation=400", "--levels=1", "--steps=20it", "--eval_every=10it",
                             "--batch_size=50", "--branches=[reinit]", "--population=2"], capture_output=True,
                            text=True, timeout=600, env=env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "population 2 (as asked)" in result.stdout
    (run,) = (in_tmp / "runs").iterdir()
    training = json.loads((run / "spec.json").read_text())["identity"]["training"]
    assert training["keras"] == 3 and training["backend"] == "jax"
    assert (run / "replicate_0" / "level_1" / "reinit" / "metrics.json").is_file()
    worker = subprocess.run([sys.executable, "-m", "tflottery.cli", "worker", str(run)], capture_output=True, text=True,
                            timeout=600, env=env)  # the run directory alone names its backend
    assert worker.returncode == 0 and "Traceback" not in worker.stderr, worker.stderr[-2000:]
