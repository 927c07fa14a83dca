"""tf.distribute: IMP levels under MultiWorkerMirroredStrategy (two local workers) and mixed precision."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from helpers import tiny_config, zeros_outside
from tflottery import find_ticket
from tflottery.engine.store import RunStore
from tflottery.core.files import read_npz

pytestmark = pytest.mark.slow

WORKER = """
import json, sys
from tflottery.config import RunConfig
from tflottery import find_ticket
from tflottery.core.files import write_npz

run = find_ticket(RunConfig.from_dict(json.loads(sys.argv[1])))
write_npz(sys.argv[2], run.replicate(0).load_level(1).final)
"""


def _ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_level_keeps_masks_exact(tmp_path):
    config = tiny_config(levels=1)
    config.training.distribute, config.runs_dir = "multi_worker", str(tmp_path / "runs")
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _ports(2)]}
    procs = []
    try:
        for index in range(2):
            env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            procs.append(subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(config.to_dict()),
                                           str(tmp_path / f"final_{index}.npz")], env=env, cwd=tmp_path,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for p in procs:
            out, _ = p.communicate(timeout=420)
            assert p.returncode == 0, out[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    name = next(p.name for p in (tmp_path / "runs").iterdir() if not p.name.startswith("."))
    chief = RunStore.open(tmp_path / "runs" / name).replicate(0)
    assert chief.levels() == [0, 1]
    assert (tmp_path / "runs" / ".worker_1" / name).exists()  # workers never write the chief's run
    record = chief.load_level(1)
    assert {k: int(m.sum()) for k, m in record.masks.items()} == {"fc1/kernel": 188160, "fc2/kernel": 24000,
                                                                  "output/kernel": 900}
    assert zeros_outside(record.final, record.masks)
    one, two = read_npz(tmp_path / "final_0.npz"), read_npz(tmp_path / "final_1.npz")
    assert all(np.array_equal(one[k], two[k]) for k in one)  # the replicas stayed in sync
    assert all(np.array_equal(one[k], record.final[k]) for k in one)


def test_mixed_precision_keeps_masks_exact(in_tmp, sample_data):
    config = tiny_config(levels=1)
    config.training.precision = "mixed_bfloat16"
    run = find_ticket(config, data=sample_data)
    record = run.replicate(0).load_level(1)
    assert all(v.dtype == np.float32 for v in record.final.values())  # variables stay float32
    assert zeros_outside(record.final, record.masks)
    assert record.metrics["final_test_accuracy"] > 0.5
    from tflottery.core.keras_compat import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # the policy was restored
