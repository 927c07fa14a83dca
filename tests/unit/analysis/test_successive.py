"""The barrier between successive levels: the path's ends are the masked level-L solution and the level-(L+1)
solution, the geometry is a hand computation, every pair of levels is stored once and drawn by `plot`."""
import math
import shutil

import numpy as np
import pytest

from tflottery.analysis.successive import KIND, geometry, key_of, level_barriers, stored
from tflottery.core.errors import ConfigError
from tflottery.engine.store import RunStore


def test_the_angle_and_distance_are_those_of_the_flattened_weights():
    a = {"k": np.array([[1.0, 0.0], [0.0, 0.0]], np.float32), "b": np.array([5.0], np.float32)}
    b = {"k": np.array([[1.0, 1.0], [0.0, 0.0]], np.float32), "b": np.array([-5.0], np.float32)}
    got = geometry(a, b, ["k"])  # only the kernels: 45 degrees apart, |a - b| / |a| = 1
    assert got["angle_deg"] == pytest.approx(45.0) and got["relative_distance"] == pytest.approx(1.0)
    both = geometry(a, b, ["b", "k"])
    assert both["angle_deg"] == pytest.approx(math.degrees(math.acos(-24 / math.sqrt(26 * 27))))


@pytest.fixture()
def run_copy(tiny_run, tmp_path):
    path = tmp_path / "runs" / tiny_run.path.name
    shutil.copytree(tiny_run.path, path, ignore=shutil.ignore_patterns("*.lock"))
    return path


def test_every_pair_of_successive_levels_is_measured_once_from_the_masked_solution(run_copy, tmp_path):
    rows = level_barriers(run_copy, alphas=5, train_examples=500)
    store = RunStore.open(run_copy).replicate(0)
    assert [(r["from_level"], r["level"], r["n"]) for r in rows] == [(0, 1, 1), (1, 2, 1), (2, 3, 1)]
    record = store.load_analysis(2, KIND, key_of(1, 5, 500))
    before, after = store.load_level(1), store.load_level(2)
    # the path's end at alpha 1 is level 2's trained ticket: its test error is that ticket's own
    assert record["test_error"][-1] == pytest.approx(100 * (1 - after.metrics["final_test_accuracy"]), abs=1e-6)
    masked = {k: w * after.masks[k] if k in after.masks else w for k, w in before.final.items()}
    assert record["angle_deg"] == pytest.approx(geometry(masked, after.final, sorted(after.masks))["angle_deg"])
    assert record["instability"] == pytest.approx(max(record["test_error"])
                                                  - (record["test_error"][0] + record["test_error"][-1]) / 2)
    written = sorted(p.stat().st_mtime_ns for p in run_copy.rglob(f"{KIND}/*.json"))
    level_barriers(run_copy, alphas=5, train_examples=500)  # nothing new: read back, not measured again
    assert sorted(p.stat().st_mtime_ns for p in run_copy.rglob(f"{KIND}/*.json")) == written
    assert len(stored(RunStore.open(run_copy))) == 3


def test_a_run_with_one_finished_level_has_nothing_to_connect(run_copy):
    for level in (1, 2, 3):
        shutil.rmtree(run_copy / "replicate_0" / f"level_{level}")
    with pytest.raises(ConfigError, match="fewer than two finished levels"):
        level_barriers(run_copy)
