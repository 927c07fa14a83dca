"""Leases: a stopped holder's unit is taken over once its line stays unchanged for the lease, never before, by one
process only, and the stopped holder then finds the unit is not its own (fencing)."""
import signal
import subprocess
import sys
import time

import pytest

from tflottery.core.errors import ConfigError
from tflottery.engine.leases import LeaseLost, Leases, Sharing
from tflottery.engine.store import RunStore

HOLDER = ("import sys, time; from tflottery.engine.store import RunStore; from tflottery.engine.leases import Leases; "
          "store = RunStore(sys.argv[1]); leases = Leases(store, float(sys.argv[2])); "
          "lock = store.claim('r0-level_1-ticket'); leases.hold('r0-level_1-ticket', lock); "
          "print('held', flush=True); time.sleep(120)")


def holder(run, lease):
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(run), str(lease)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def watch(leases, name, seconds):
    """Probe `name` for `seconds`; whether its lease expired by then."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        leases.probe(name)
        time.sleep(0.05)
    return leases.expired(name)


def test_a_renewing_holder_keeps_its_unit_and_a_stopped_one_loses_it_to_exactly_one_taker(tmp_path):
    run = tmp_path / "run"
    store = RunStore(run)
    other = holder(run, 1.0)
    mine, third = Leases(store, 1.0), Leases(RunStore(run), 1.0)
    name = "r0-level_1-ticket"
    try:
        assert not watch(mine, name, 1.6)  # it renews every 0.1 s: never expired while it runs
        assert "lease beat" in mine.probe(name)
        assert mine.take_over(name) is None  # not expired: no takeover
        other.send_signal(signal.SIGSTOP)
        time.sleep(0.2)
        mine.probe(name), third.probe(name)
        assert not mine.expired(name)  # the line stopped changing just now: not yet
        time.sleep(1.2)
        assert mine.expired(name) and third.expired(name)
        lock = mine.take_over(name)
        assert lock is not None and lock.owns()
        assert third.take_over(name) is None  # the line it saw is gone: it does not take it from the new holder
        assert store.unit_lock(name).holder().startswith(f"process {__import__('os').getpid()} on")
    finally:
        other.send_signal(signal.SIGCONT)
        other.kill()
        other.wait(timeout=30)
        mine.close(), third.close()


def test_a_holder_whose_unit_was_taken_over_is_fenced_off(tmp_path):
    store = RunStore(tmp_path / "run")
    late, taker = Leases(store, 1.0), Leases(RunStore(tmp_path / "run"), 1.0)
    name = "r0-level_2-reinit"
    try:
        late.hold(name, store.claim(name))
        late.fence(name)()  # its own: nothing raised
        late._stop.set()  # it stops renewing (as SIGSTOP would stop it)
        time.sleep(0.15)
        assert watch(taker, name, 1.3)
        lock = taker.take_over(name)
        assert lock is not None
        taker.hold(name, lock)
        with pytest.raises(LeaseLost, match=r"another process took it over.*result of it is dropped"):
            late.fence(name)()
        taker.fence(name)()
    finally:
        late.close(), taker.close()


def test_a_unit_whose_holder_died_is_simply_claimed(tmp_path):
    run = tmp_path / "run"
    other = holder(run, 300.0)
    other.kill()
    other.wait(timeout=30)
    leases = Leases(RunStore(run), 300.0)
    try:
        assert leases.probe("r0-level_1-ticket") is None and RunStore(run).claim("r0-level_1-ticket") is not None
    finally:
        leases.close()


@pytest.mark.parametrize("field,value,message", [
    ("lease", 0.5, r"--lease=0.5: give seconds, at least 1"), ("lease", float("inf"), r"--lease=inf"),
    ("wait", -1.0, r"--wait=-1.0"), ("tries", 0, r"--tries=0: give how many times"), ("tries", True, r"--tries=True")])
def test_bad_sharing_settings_are_one_line(field, value, message):
    with pytest.raises(ConfigError, match=message):
        Sharing(**{field: value}).check()


def test_failures_are_counted_and_a_unit_is_marked_failed_after_its_tries(tmp_path):
    store = RunStore(tmp_path / "run")
    assert store.record_failure("r0-level_1-reinit", "ValueError: boom", 2)["failed"] is False
    assert store.failed() == {}
    record = store.record_failure("r0-level_1-reinit", "ValueError: boom again", 2)
    assert record["failed"] and record["tries"] == 2 and store.failed() == {"r0-level_1-reinit": record}
    assert store.clear_failures() == ["r0-level_1-reinit"] and store.failed() == {} and \
        store.failure("r0-level_1-reinit") is None


def test_an_error_a_stop_signal_caused_is_the_stop_not_a_failure(tmp_path):
    """TensorFlow's pybind11 wraps a `Stopped` raised inside an op into a RuntimeError ("MISMATCH of original and
    normalized active exception types"): counted as a failure, the unit trained again and SIGTERM ended nothing."""
    import os
    from tflottery.core.runner import Stopped, stop_on_signals
    from tflottery.engine.loop import fail
    store = RunStore(tmp_path / "run")
    with stop_on_signals():
        try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
        except Stopped as stop:
            wrapped = RuntimeError(f"pybind11::error_already_set: REPLACED BY {stop!r}")
        with pytest.raises(Stopped, match="SIGTERM"):
            fail(store, "r0-level_1-ticket", wrapped, Sharing())
    assert store.failure("r0-level_1-ticket") is None
    with stop_on_signals():  # a new command starts with no stop received
        fail(store, "r0-level_1-ticket", ValueError("boom"), Sharing())
    assert store.failure("r0-level_1-ticket")["tries"] == 1


def test_active_workers_count_live_processes_and_forget_dead_ones(tmp_path):
    run = tmp_path / "run"
    code = ("import sys, time; from tflottery.engine.store import RunStore; RunStore(sys.argv[1]).join(); "
            "print('in', flush=True); time.sleep(120)")
    others = [subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True)
              for _ in range(2)]
    try:
        for p in others:
            assert p.stdout.readline().strip() == "in"
        store = RunStore(run)
        mine = store.join()
        assert store.active_workers() == 3
        others[0].kill()
        others[0].wait(timeout=30)
        assert store.active_workers() == 2 and len(list((run / ".units" / "workers").iterdir())) == 2
        mine.release()
    finally:
        for p in others:
            p.kill()
