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
