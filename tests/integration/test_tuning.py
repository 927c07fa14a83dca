import json
from pathlib import Path
import os
import socket
import subprocess
import sys
import time

import pytest

from tflottery.core.errors import ConfigError
from tflottery.tuning import score, tune

pytestmark = pytest.mark.slow

BASE = {"levels": 2, "steps": "20it", "eval_every": "10it", "validation": 300, "verbose": False,
        "steps_per_execution": 5}


def test_objectives():
    rows = [{"branch": "ticket", "level": lv, "remaining": r, "early_stop_test_accuracy": a + d, "replicate": i}
            for lv, r, a in [(0, 1.0, 0.95), (1, 0.5, 0.948), (2, 0.25, 0.94), (3, 0.125, 0.90)]
            for i, d in enumerate((-0.01, 0.01))]  # two replicates: their mean counts
    assert score(rows, "accuracy_at", target_remaining=0.3) == 0.94
    assert score(rows, "sparsest_within", tolerance=0.005) == 0.5  # 50% remaining is the sparsest within 0.5 pt
    with pytest.raises(ConfigError, match="Unknown objective"):
        score(rows, "loss")


@pytest.mark.parametrize("kwargs,message", [
    ({"space": "not json"}, "is not JSON"),
    ({"space": {"rewind": ["0it", "1ep"]}}, "space\\['rewind'\\] value '1ep' cannot run"),
    ({"space": {"dense_rate": []}}, "non-empty list"),
    ({"oracle": "grid"}, "Unknown oracle"),
    ({"max_trials": 0}, "max_trials=0 must be >= 1"),
    ({"levels": "many"}, "must be an integer"),
])
def test_bad_sweeps_are_refused_before_the_first_trial(in_tmp, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        tune(**{**BASE, **kwargs})
    assert not (in_tmp / "runs").exists()


@pytest.mark.parametrize("oracle", ["random", "bayesian", "hyperband"])
def test_tune_names_the_best_configuration(in_tmp, oracle):
    result = tune(oracle=oracle, max_trials=2, max_epochs=2, space={"dense_rate": [0.2, 0.5], "lr": [1e-3, 3e-3]},
                  **({**BASE, "steps": "1ep"} if oracle == "hyperband" else BASE))
    assert set(result["best"]) >= {"dense_rate", "lr"} and 0.0 < result["score"] <= 1.0
    trials = list((in_tmp / "runs" / "tuning" / "imp" / "trials").glob("*.json"))
    assert len(trials) == result["trials"] >= 2
    runs = {json.loads(t.read_text())["run"] for t in trials}
    assert all(os.path.isdir(r) for r in runs)  # results land in ordinary run directories
    branches = {b.name for r in runs for b in (Path(r) / "replicate_0" / "level_1").iterdir()}
    assert branches == {"ticket"}  # the objective reads the ticket: no baseline trained for it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_tuning_shares_trials_over_loopback(in_tmp):
    port, trials = _free_port(), 4
    code = ("import json, sys; from tflottery.tuning import tune; "
            f"tune(oracle='random', max_trials={trials}, space={{'dense_rate': [0.2, 0.3, 0.4, 0.5, 0.6]}}, "
            f"**json.loads(sys.argv[1]))")
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port),
           "TFLOTTERY_OFFLINE": "1"}
    procs = []
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            procs.append(subprocess.Popen([sys.executable, "-c", code, json.dumps(BASE)], cwd=in_tmp,
                                          env={**env, "KERASTUNER_TUNER_ID": tuner_id},
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            if tuner_id == "chief":
                time.sleep(3)  # let the oracle server start listening
        for p in procs[1:]:
            out, _ = p.communicate(timeout=400)
            assert p.returncode == 0, out[-3000:]
        procs[0].wait(timeout=60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    done = [json.loads(f.read_text()) for f in (in_tmp / "runs" / "tuning" / "imp" / "trials").glob("*.json")]
    assert len(done) == trials and len({d["trial"] for d in done}) == trials  # none lost, none repeated
    assert {d["worker"] for d in done} == {"tuner0", "tuner1"}  # shared out between the workers
