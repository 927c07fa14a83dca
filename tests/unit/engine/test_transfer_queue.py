"""A transfer in a run's work queue: recorded once, read back as the same units, and a queue file that is not a
request of this run (a shared folder is untrusted) is one RunError naming the file and the fix, before any work."""
import json
import shutil

import pytest

from tflottery.core.errors import RunError
from tflottery.engine.branches import Transfer
from tflottery.engine.graph import status
from tflottery.engine.store import RunStore
from tflottery.engine.transfers import queued, request_of

TARGET = {"data": {"dataset": "mnist", "labels": [5, 6, 7, 8, 9]}, "training": {"steps": "20it"}}


@pytest.fixture
def store(tiny_run, tmp_path):
    shutil.copytree(tiny_run.path, tmp_path / tiny_run.path.name)
    return RunStore.open(tmp_path / tiny_run.path.name)


def test_a_queued_transfer_is_recorded_once_and_read_back_as_its_units(store):
    branches = [Transfer(**TARGET, init=init) for init in ("rewind", "reinit")]
    request = request_of({0: [2, 1]}, branches)
    assert store.queue_transfer(request) == store.queue_transfer(request)  # one file for one request
    ((levels, again),) = queued(store)
    assert levels == {0: [1, 2]} and [b.key() for b in again] == [b.key() for b in branches]
    report = status(store.path)
    assert report["ready"] == 4 and not report["finished"]


@pytest.mark.parametrize("request_, why", [
    ("not json", "not JSON"), ({"levels": {"0": [1]}}, "exactly 'levels' and 'branches'"),
    ({"levels": {"7": [1]}, "branches": [TARGET]}, "no replicate '7'"),
    ({"levels": {"0": [9]}, "branches": [TARGET]}, "are not all finished levels"),
    ({"levels": {"0": [1]}, "branches": [{"data": {}, "training": {}, "init": "both"}]}, "transfer init='both'"),
    ({"levels": {"0": [1]}, "branches": [TARGET, {**TARGET, "data": {"dataset": "fashion_mnist"}}]}, "different targets"),
])
def test_a_queue_file_that_is_not_a_request_of_this_run_is_one_error_naming_it(store, request_, why):
    folder = store.path / ".units" / "transfers"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bad.json").write_text(request_ if isinstance(request_, str) else json.dumps(request_))
    with pytest.raises(RunError, match=f"bad.json.*{why}.*delete it and request the transfer again"):
        queued(store)
    with pytest.raises(RunError, match="bad.json"):
        status(store.path)
