"""Keras 3 on JAX: units trained in groups (towers of one jitted program) are the units trained one by one, byte
for byte, run directory and all. In a file of its own so that the test runner can give it its own process."""
import importlib.util

import pytest

from helpers import assert_same_run
from keras3_runs import find_in, only_run

pytestmark = pytest.mark.slow


def test_on_jax_units_trained_in_groups_are_the_units_trained_one_by_one(tmp_path):
    """Two replicates x (ticket, reinit, random_prune): groups of up to 6 towers against one unit at a time."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: pip install 'tflottery[jax]'")
    for population in (6, 1):
        done = find_in("jax", tmp_path / f"p{population}", "run", population=population, levels=2, replicates=2)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"GROUPS {population}\n" in done.stdout, done.stdout  # six towers in one program at level 1
    grouped, alone = only_run(tmp_path / "p6"), only_run(tmp_path / "p1")
    assert grouped.name == alone.name
    assert_same_run(grouped, alone)
