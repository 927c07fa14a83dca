"""The executors' contract: every registered executor writes the files `local` writes, for `find` and for a
`transfer` (the units of one loop), and transfers started in two processes train each unit once and write
the files of one. The commands run as users run them, in processes of their own."""
import json
import shutil
import subprocess
import sys

import pytest

from helpers import assert_same_run
from tflottery import find_ticket, transfer
from tflottery.config import RunConfig
from tflottery.engine.executors import EXECUTORS

pytestmark = pytest.mark.slow
FLAGS = ["--dataset=mnist", "--validation=400", "--levels=2", '--branches=["reinit"]', "--replicates=2",
         "--population=1", "--steps=40it", "--eval_every=20it", "--batch_size=50", "--jit_compile=false",
         "--steps_per_execution=5", "--verbose=false"]
TARGET = ["--labels=[5,6,7,8,9]", "--steps=20it", "--eval_every=10it", "--verbose=true"]  # a line per unit
OPTIONS = {"processes": ["--executor.processes=2"]}
NEEDS = {"ray": "ray"}


def config(runs_dir) -> RunConfig:
    return RunConfig.from_dict({
        "data": {"dataset": "mnist", "validation": 400}, "runs_dir": str(runs_dir),
        "plan": {"levels": 2, "branches": ["reinit"], "replicates": 2, "population": 1},
        "training": {"steps": "40it", "eval_every": "20it", "batch_size": 50, "verbose": False, "jit_compile": False,
                     "steps_per_execution": 5}})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sample_data):
    """(the run before any transfer, the run with its transfer), both as one process writes them."""
    where = tmp_path_factory.mktemp("reference")
    run = find_ticket(config(where / "runs"), data=sample_data)
    pristine = where / "pristine" / run.path.name
    shutil.copytree(run.path, pristine)
    transfer(run.path, {"labels": [5, 6, 7, 8, 9]}, {"steps": "20it", "eval_every": "10it", "verbose": True})
    return pristine, run.path


def cli(*args, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tflottery.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)


def finished(process, timeout=900) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0 and "Traceback" not in err, err[-3000:]
    return out


@pytest.mark.parametrize("name", sorted(EXECUTORS))
def test_every_executor_writes_the_files_local_writes_for_find_and_transfer(name, tmp_path, reference):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name], reason=f"the {name} executor needs its extra")
    runs = tmp_path / "runs"
    executor = [f"--executor={name}", *OPTIONS.get(name, [])]
    finished(cli("find", *FLAGS, f"--runs_dir={runs}", *executor, cwd=tmp_path))
    run = runs / reference[1].name
    assert_same_run(run, reference[0])
    finished(cli("transfer", str(run), *TARGET, f"--runs_dir={runs}", *executor, cwd=tmp_path))
    assert_same_run(run, reference[1])


def test_two_transfer_processes_train_each_unit_once_and_write_the_files_of_one(tmp_path, reference):
    run = tmp_path / "runs" / reference[0].name
    shutil.copytree(reference[0], run)
    processes = [cli("transfer", str(run), *TARGET, f"--runs_dir={tmp_path / 'runs'}", cwd=tmp_path)
                 for _ in range(2)]
    outs = [finished(p) for p in processes]
    assert_same_run(run, reference[1])
    trained = [line for out in outs for line in out.splitlines() if line.startswith("[tflottery] r0 level")]
    assert len(trained) == 2, outs


def test_a_queued_transfer_trains_on_two_workers_and_writes_the_files_of_one(tmp_path, reference):
    """`transfer --queue` records the transfer in the run's work queue; `status` counts its units; two
    `tflottery worker` processes train them, each unit once, into the files one transfer process writes."""
    run = tmp_path / "runs" / reference[0].name
    shutil.copytree(reference[0], run)
    finished(cli("transfer", str(run), *TARGET, f"--runs_dir={tmp_path / 'runs'}", "--queue", cwd=tmp_path))
    assert_same_run(run, reference[0])  # queued: nothing trained, nothing of the results written
    status = json.loads(finished(cli("status", str(run))).splitlines()[-1])
    assert (status["ready"], status["finished"]) == (2, False), status
    workers = [cli("worker", str(run), "--wait=600", cwd=tmp_path) for _ in range(2)]
    outs = [finished(p) for p in workers]
    assert_same_run(run, reference[1])
    trained = [line for out in outs for line in out.splitlines() if " transfer-" in line and "weights remaining" in line]
    assert len(trained) == 2, outs
    assert json.loads(finished(cli("status", str(run))).splitlines()[-1])["finished"]
