"""The run as a graph of units: states read from the directory alone, the missing Ray extra, the lock check."""
import shutil
import sys

import pytest

from tflottery.core.errors import ConfigError
from tflottery.engine.graph import DONE, READY, RUNNING, WAITING, status, status_text


@pytest.fixture
def partial(tmp_path, tiny_run):
    """A copy of the session's tiny run (3 levels, ticket only) with levels 2 and 3 gone."""
    copy = tmp_path / "runs" / tiny_run.path.name
    shutil.copytree(tiny_run.path, copy)
    for level in (2, 3):
        shutil.rmtree(copy / "replicate_0" / f"level_{level}")
    return copy


def test_a_finished_run_has_every_unit_done(tiny_run):
    report = status(tiny_run.path)
    assert (report["units"], report[DONE], report["finished"]) == (4, 4, True)
    assert status_text(report).endswith("4/4 units done, 0 running, 0 ready, 0 waiting (finished)")


def test_the_next_level_is_ready_the_later_ones_wait_and_a_held_unit_runs(partial):
    from tflottery.engine.store import RunStore

    report = status(partial)
    assert (report[DONE], report[READY], report[WAITING], report["ready_units"]) == (2, 1, 1, ["r0-level_2-ticket"])
    lock = RunStore(partial).claim("r0-level_2-ticket")
    try:
        report = status(partial)
        assert (report[RUNNING], report[READY]) == (1, 0)
        assert report["running_units"][0]["holder"].startswith("process ")
        assert "running r0-level_2-ticket: process" in status_text(report)
        assert RunStore(partial).claim("r0-level_2-ticket") is None  # one holder at a time
    finally:
        lock.release()


def test_the_ray_executor_without_ray_is_one_error_naming_the_extra(monkeypatch):
    from tflottery.engine.executors import check_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"--executor=ray needs Ray, an optional extra: pip install 'tflottery\[ray\]'"):
        check_executor("ray")
    assert check_executor("local") == "local"


def test_the_lock_check_passes_on_a_local_file_system_and_leaves_nothing(tmp_path):
    from tflottery.core.files import check_locks

    lines = check_locks(tmp_path)
    assert [line for line in lines if line.startswith("ok: ")] == [
        "ok: atomic rename and create-once link", "ok: a lock another process holds is refused",
        "ok: the lock of a process killed by kill -9 is released"]
    assert [p.name for p in tmp_path.iterdir()] == [".tflottery-check.lock"]


def test_a_worker_with_nothing_to_take_waits_then_names_the_holders(partial):
    from tflottery import run_worker
    from tflottery.core.errors import RunError
    from tflottery.engine.store import RunStore

    lock = RunStore(partial).claim("r0-level_2-ticket")  # another process trains the only ready unit
    try:
        with pytest.raises(RunError, match=r"nothing this process can take became ready in 0.3 s \(2 units unfinished; "
                                           r"held by others: r0-level_2-ticket: process \d+ on .*raise --wait"):
            run_worker(partial, wait=0.3)
    finally:
        lock.release()
    assert RunStore(partial).replicate(0).levels() == [0, 1]  # it trained nothing
