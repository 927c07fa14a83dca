"""Workers: any number of processes train one run, each unit once, and write what one `find` writes."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import assert_same_run, tiny_config
from tflottery import find_ticket
from tflottery.engine.store import RunStore

pytestmark = pytest.mark.slow
BRANCHES = ["reinit", "random_prune"]
FLAGS = ["--dataset=mnist", "--validation=400", "--levels=3", f"--branches={json.dumps(BRANCHES)}", "--replicates=2",
         "--population=2", "--steps=60it", "--eval_every=15it", "--batch_size=50",
         "--jit_compile=false", "--steps_per_execution=5"]


def config():
    c = tiny_config(levels=3, branches=BRANCHES, replicates=2, population=2)
    c.training.steps = "60it"
    return c


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sample_data):
    """The run as one `find` writes it."""
    c = config()
    c.runs_dir = str(tmp_path_factory.mktemp("reference") / "runs")
    return find_ticket(c, data=sample_data)


def workers(where, count, verbose=False):
    flags = FLAGS + [f"--runs_dir={where}", f"--verbose={str(verbose).lower()}", "--create"]
    return [subprocess.Popen([sys.executable, "-m", "tflottery.cli", "worker", *flags, "--wait=300"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(count)]


def finish(processes, timeout=900):
    outs = []
    for p in processes:
        out, err = p.communicate(timeout=timeout)
        outs.append((p.returncode, out, err))
    return outs


def test_three_workers_write_the_files_one_find_writes(tmp_path, reference):
    runs = tmp_path / "runs"
    results = finish(workers(runs, 3, verbose=True))
    for code, out, err in results:
        assert code == 0 and "Traceback" not in err, err[-3000:]
    path = runs / reference.path.name
    assert_same_run(path, reference.path)
    trained = [line for _, out, _ in results for line in out.splitlines() if " holds r" in line]
    units = [u for line in trained for u in line.split(" holds ")[1].split(", ")]
    assert len(units) == len(set(units)) == 2 * (1 + 3 * 3)  # every unit trained once, in one of the workers
    assert sum(1 for _, out, _ in results if " holds r" in out) >= 2  # the work was shared
    status = subprocess.run([sys.executable, "-m", "tflottery.cli", "status", str(path)], capture_output=True,
                            text=True, timeout=120)
    assert status.returncode == 0 and "20/20 units done, 0 running, 0 ready, 0 waiting (finished)" in status.stdout


def test_a_worker_killed_mid_unit_frees_it_and_the_others_finish_the_run_identical(tmp_path, reference):
    runs = tmp_path / "runs"
    processes = workers(runs, 3)
    by_pid = {p.pid: p for p in processes}
    victim = None
    try:
        store, deadline = None, time.time() + 300
        while time.time() < deadline and victim is None and all(p.poll() is None for p in processes):
            folders = list(runs.glob("*")) if runs.is_dir() else []
            store = store or (RunStore(folders[0]) if folders else None)
            held = store.running() if store is not None and (store.path / ".units").is_dir() else {}
            for name, line in held.items():
                pid = int(line.split()[1])
                if "level_0" not in name and pid in by_pid:  # a worker trains a pruned level's unit: kill -9 it
                    time.sleep(0.3)
                    os.kill(pid, signal.SIGKILL)
                    victim = by_pid[pid]
                    break
            time.sleep(0.05)
        assert victim is not None, "no worker was seen holding a pruned unit"
        processes.append(subprocess.Popen([sys.executable, "-m", "tflottery.cli", "worker", str(store.path)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # joins late
        results = finish([p for p in processes if p is not victim])
        victim.wait(timeout=60)
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    assert victim.returncode == -signal.SIGKILL
    for code, _, err in results:
        assert code == 0 and "Traceback" not in err, err[-3000:]
    assert_same_run(runs / reference.path.name, reference.path)
    assert not list((runs / reference.path.name).rglob("*.tmp"))


def ray_tasks() -> list[int]:
    """Pids of the Ray worker processes training a group of units now."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and open(f"/proc/{entry}/cmdline", "rb").read().startswith(b"ray::tflottery_train_units"):
                pids.append(int(entry))
        except OSError:
            pass
    return pids


def test_the_ray_executor_writes_the_files_one_find_writes_even_when_a_task_is_killed(tmp_path, reference):
    pytest.importorskip("ray", reason="the Ray executor's test needs the extra: pip install 'tflottery[ray]'")
    runs = tmp_path / "runs"
    driver = subprocess.Popen([sys.executable, "-m", "tflottery.cli", "find", *FLAGS, f"--runs_dir={runs}",
                               "--verbose=false", "--executor=ray"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=tmp_path)
    killed = None
    try:
        deadline = time.time() + 300
        while time.time() < deadline and driver.poll() is None and killed is None:
            tasks = ray_tasks()
            if tasks:
                time.sleep(1.0)  # mid-task: loading TensorFlow and the data, or training
                os.kill(tasks[0], signal.SIGKILL)
                killed = tasks[0]
            time.sleep(0.1)
        out, err = driver.communicate(timeout=900)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert killed is not None, err[-3000:]
    assert driver.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert_same_run(runs / reference.path.name, reference.path)


def wait_for_holder(runs, processes, pruned=False, timeout=300):
    """(store, unit name, holder pid) once one of `processes` holds a unit (of a pruned level if `pruned`)."""
    by_pid, store, deadline = {p.pid: p for p in processes}, None, time.time() + timeout
    while time.time() < deadline and all(p.poll() is None for p in processes):
        folders = list(runs.glob("*")) if runs.is_dir() else []
        store = store or (RunStore(folders[0]) if folders else None)
        held = store.running() if store is not None and (store.path / ".units").is_dir() else {}
        for name, line in held.items():
            pid = int(line.split()[1])
            if pid in by_pid and (not pruned or "level_0" not in name):
                return store, name, pid
        time.sleep(0.05)
    raise AssertionError("no process was seen holding a unit: "
                         + " | ".join(p.communicate(timeout=60)[1][-2000:] for p in processes if p.poll() is not None))


def test_a_stopped_worker_loses_its_units_after_the_lease_and_its_late_results_are_refused(tmp_path, reference):
    runs = tmp_path / "runs"
    flags = FLAGS + [f"--runs_dir={runs}", "--verbose=false", "--create", "--lease=4"]
    stopped = subprocess.Popen([sys.executable, "-m", "tflottery.cli", "worker", *flags], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    taker = None
    try:
        store, name, _ = wait_for_holder(runs, [stopped])
        stopped.send_signal(signal.SIGSTOP)  # alive, holding its units, renewing nothing
        started = time.time()
        taker = subprocess.Popen([sys.executable, "-m", "tflottery.cli", "worker", *flags, "--wait=300"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = taker.communicate(timeout=900)
        assert taker.returncode == 0, err[-3000:]
        assert f"unit {name}: its holder (process {stopped.pid} on" in err and "this process takes it over" in err
        assert time.time() - started > 4  # not before the lease ran out
        stopped.send_signal(signal.SIGCONT)
        late_out, late_err = stopped.communicate(timeout=600)
    finally:
        for p in (stopped, taker):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
    assert stopped.returncode == 0, late_err[-3000:]
    assert f"unit {name}: another process took it over" in late_err and "result of it is dropped" in late_err
    assert_same_run(runs / reference.path.name, reference.path)
    assert not store.running()


def test_a_unit_that_always_raises_is_marked_failed_after_its_tries_and_named(tmp_path, reference, monkeypatch):
    from tflottery.core.errors import RunError
    from tflottery.engine.trainer.tfkeras import TfKerasTrainer

    train = TfKerasTrainer.train

    def broken(self, units):
        if any((u.replicate, u.level, u.branch.key()) == (1, 1, "reinit") for u in units):
            raise FloatingPointError("a unit that always fails")
        return train(self, units)

    c = config()
    c.runs_dir = str(tmp_path / "runs")
    monkeypatch.setattr(TfKerasTrainer, "train", broken)
    with pytest.raises(RunError, match=r"1 unit\(s\) failed and 0 wait for them: r1-level_1-reinit after 2 tries: "
                                       r"FloatingPointError: a unit that always fails.*--retry_failed"):
        find_ticket(c)
    path = tmp_path / "runs" / reference.path.name
    status = subprocess.run([sys.executable, "-m", "tflottery.cli", "status", str(path)], capture_output=True,
                            text=True, timeout=120)
    assert status.returncode == 0 and "19/20 units done" in status.stdout and ", 1 failed" in status.stdout
    assert "failed r1-level_1-reinit after 2 tries: FloatingPointError: a unit that always fails" in status.stdout
    again = subprocess.run([sys.executable, "-m", "tflottery.cli", "find", *FLAGS, f"--runs_dir={tmp_path / 'runs'}",
                            "--verbose=false"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "r1-level_1-reinit after 2 tries" in again.stderr  # skipped, named, non-zero
    monkeypatch.setattr(TfKerasTrainer, "train", train)
    find_ticket(c, retry_failed=True)
    assert_same_run(path, reference.path)


def stopped_then_resumed(command, mid_work, limit, tmp_path, reference):
    """SIGTERM `command` once `mid_work(process)` returns: it ends within `limit` seconds with exit 143 and one
    line, holds no lock and leaves nothing half-written; the same command again writes the bytes of one find."""
    runs = tmp_path / "runs"
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        mid_work(first)
        sent = time.time()
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
        took = time.time() - sent
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "stopped by SIGTERM: its units are released" in err and "Traceback" not in err
    assert took < limit, took
    store = RunStore(runs / reference.path.name)
    assert not store.running() and store.holder() is None  # every lock released
    assert not list(store.path.rglob("*.tmp"))  # nothing half-written
    again = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_same_run(runs / reference.path.name, reference.path)


def test_sigterm_mid_group_releases_everything_and_the_restart_writes_the_same_bytes(tmp_path, reference):
    def mid_group(process):
        wait_for_holder(tmp_path / "runs", [process], pruned=True)
        time.sleep(0.5)

    command = [sys.executable, "-m", "tflottery.cli", "find", *FLAGS, f"--runs_dir={tmp_path / 'runs'}",
               "--verbose=false"]
    stopped_then_resumed(command, mid_group, 15, tmp_path, reference)


def test_sigterm_ends_the_ray_driver_cleanly_and_the_restart_writes_the_same_bytes(tmp_path, reference):
    pytest.importorskip("ray", reason="the Ray executor's test needs the extra: pip install 'tflottery[ray]'")

    def mid_task(driver):
        deadline = time.time() + 300
        while time.time() < deadline and driver.poll() is None and not ray_tasks():
            time.sleep(0.1)
        time.sleep(1.0)

    command = [sys.executable, "-m", "tflottery.cli", "find", *FLAGS, f"--runs_dir={tmp_path / 'runs'}",
               "--verbose=false", "--executor=ray"]
    stopped_then_resumed(command, mid_task, 30, tmp_path, reference)
