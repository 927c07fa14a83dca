"""A subclassed Keras 3 model (Embedding, MultiHeadAttention, Dense) through `find_ticket(model=TheClass)` on the
user's own token arrays, each backend in processes of its own: IMP with reinit and random pruning, every target
pruned at its rate and exactly zero where pruned, "remaining" equal to a count of the masks, a kill -9 resumed to
the bytes of the whole run (on PyTorch in the suite; measured on TensorFlow as well), a population of 3 equal to the units alone (JAX), a weights-only ticket
filled into a new instance with the run's logits, a transfer to other arrays, another network another run, and the
branches and executors it cannot serve refused in one line."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_same_run, zeros_outside

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import json, os, signal, sys, threading, time
from pathlib import Path
import keras
import numpy as np
from tflottery import export_ticket, find_ticket, load_ticket, transfer
from tflottery.core.errors import ConfigError

runs, mode, population = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])


class Tokens(keras.Model):
    def __init__(self, width=16):
        super().__init__()
        self.embed = keras.layers.Embedding(20, width)
        self.attention = keras.layers.MultiHeadAttention(2, 8)
        self.pool = keras.layers.GlobalAveragePooling1D()
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.head = keras.layers.Dense(3)

    def call(self, x):
        h = self.embed(keras.ops.cast(x, "int32"))
        return self.head(self.hidden(self.pool(h + self.attention(h, h))))


rng = np.random.default_rng(0)
x = rng.integers(0, 20, (600, 12)).astype("int32")
y = (x[:, 0] % 3).astype("int64")
config = {"plan": {"levels": 2, "branches": ["reinit", "random_prune"], "population": population},
          "runs_dir": str(runs), "training": {"steps": "20it", "eval_every": "10it", "batch_size": 30,
                                              "optimizer": "adam", "lr": 3e-3, "verbose": False}}
if mode == "kill":  # SIGKILL once level 1's ticket is stored: mid-way through level 1's baselines
    def killer():
        while not list(runs.glob("*/replicate_0/level_1/ticket/metrics.json")):
            time.sleep(0.02)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=killer, daemon=True).start()
run = find_ticket(config, model=Tokens, data=(x, y))
out = {"path": str(run.path), "trained": len(run.trained)}
if mode == "whole":
    import shutil

    shutil.copytree(run.path, runs / "before_transfer" / run.path.name)  # the run as find left it
    again = find_ticket(config, model=Tokens, data=(x, y))
    wide = find_ticket({**config, "plan": {**config["plan"], "levels": 1, "branches": []}},
                       model=lambda: Tokens(width=24), data=(x, y))
    ticket = export_ticket(run, out=runs / "ticket")
    filled = load_ticket(ticket, model=Tokens)
    moved = transfer(run.path, data=(x[::-1].copy(), ((x[::-1, 1] + 1) % 3).astype("int64")), model=Tokens,
                     training={"steps": "10it", "eval_every": "10it"})
    refusals = []
    for changed, executor in (({**config, "plan": {"levels": 1, "branches": ["snip"]}}, "local"),
                              (config, "processes")):
        try:
            find_ticket(changed, model=Tokens, data=(x, y), executor=executor)
        except ConfigError as error:
            refusals.append(str(error))
    out.update(again=str(again.path), again_trained=len(again.trained), wide=str(wide.path),
               logits=keras.ops.convert_to_numpy(filled(x[:8])).tolist(),
               run_logits=keras.ops.convert_to_numpy(run.model(x[:8])).tolist(),
               filled_masks={v.path: float(np.mean(np.asarray(v) == 0)) for v in filled.trainable_variables
                             if type(v.constraint).__name__ == "TicketMask"},
               transfer={"trained": len(moved.trained), "rewind": moved.metrics()["remaining"],
                         "zeros": bool(all(np.all(moved.record().final[k][~m] == 0)
                                           for k, m in moved.record().masks.items()))},
               refusals=refusals)
print("OUT", json.dumps(out))
'''


def run_script(backend: str, runs: Path, mode: str, population: int = 1) -> "tuple[int, dict, str]":
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(runs), mode, str(population)], capture_output=True,
                          text=True, timeout=600, env=env, cwd=TESTS)
    lines = [line for line in done.stdout.splitlines() if line.startswith("OUT ")]
    return done.returncode, json.loads(lines[-1][4:]) if lines else {}, done.stderr[-3000:]


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_a_subclassed_keras3_model_finds_resumes_and_ships_a_ticket(tmp_path, backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed: pip install 'tflottery[{backend}]'")
    code, whole, err = run_script(backend, tmp_path / "whole", "whole")
    assert code == 0, err
    path = Path(whole["path"])
    assert path.name.startswith("tokens-arrays-")
    assert whole["again"] == whole["path"] and whole["again_trained"] == 0  # the same code and arrays: the same run
    assert whole["wide"] != whole["path"]  # other variables: another run

    from tflottery.engine.store import RunStore

    store = RunStore.open(path)
    identity = json.loads((path / "spec.json").read_text())["identity"]
    assert identity["training"]["keras"] == 3 and identity["training"]["backend"] == backend
    rep = store.replicate(0)
    level2 = rep.load_level(2)
    assert set(level2.masks) == {"embedding/embeddings", "multi_head_attention/query/kernel",
                                 "multi_head_attention/key/kernel", "multi_head_attention/value/kernel",
                                 "multi_head_attention/attention_output/kernel", "dense/kernel", "dense_1/kernel"}
    for level in (1, 2):
        for branch in ("ticket", "reinit", "random_prune"):
            record = rep.load_level(level, branch)
            assert zeros_outside(record.final, record.masks), (level, branch)
            kept = sum(int(m.sum()) for m in record.masks.values()) / sum(m.size for m in record.masks.values())
            assert record.metrics["remaining"] == pytest.approx(kept, abs=1e-12)
    hidden = level2.masks["dense/kernel"]
    assert hidden.mean() == pytest.approx(0.8 * 0.8, abs=1 / hidden.size)  # the dense rate, twice
    assert level2.masks["dense_1/kernel"].mean() == pytest.approx(0.9 * 0.9, abs=2 / 48)  # the output rate

    np.testing.assert_allclose(whole["logits"], whole["run_logits"], atol=1e-6)  # ticket filled == the run's model
    pruned = 1 - level2.masks["dense/kernel"].mean()
    assert any(share == pytest.approx(pruned, abs=1e-9) for share in whole["filled_masks"].values())
    assert whole["transfer"]["trained"] == 2 and whole["transfer"]["zeros"]  # the ticket and its reinit
    out, total = level2.masks["dense_1/kernel"], sum(m.size for m in level2.masks.values())
    fresh_head = (sum(int(m.sum()) for m in level2.masks.values()) - out.sum() + out.size) / total
    assert whole["transfer"]["rewind"] == pytest.approx(fresh_head, abs=1e-12)  # the ticket, a fresh dense head
    snip, processes = whole["refusals"]
    assert "snip" in snip and "tf_keras copy" in snip and "\n" not in snip
    assert "processes" in processes and "built by your code" in processes
    if backend == "tensorflow":
        return  # the kill on PyTorch (the suite's time: measured on both)
    code, _, err = run_script(backend, tmp_path / "killed", "kill")
    assert code == -9, err
    code, resumed, err = run_script(backend, tmp_path / "killed", "run")
    assert code == 0, err
    assert 0 < resumed["trained"] <= 5  # of 7 units: only what the killed process had not stored (2+ were)
    assert_same_run(tmp_path / "whole" / "before_transfer" / path.name, Path(resumed["path"]))


def test_a_subclassed_keras3_population_on_jax_is_the_units_alone(tmp_path):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: pip install 'tflottery[jax]'")
    paths = []
    for population in (1, 3):
        code, out, err = run_script("jax", tmp_path / str(population), "run", population)
        assert code == 0, err
        paths.append(Path(out["path"]))
    assert_same_run(paths[1], paths[0])
    from tflottery.engine.store import RunStore

    dense = RunStore.open(paths[0]).replicate(0).load_level(0)
    moved = np.any(dense.final["embedding/embeddings"] != dense.start["embedding/embeddings"], axis=1)
    assert moved.sum() == 20  # every token id's row trained: ids reach the model as they are (not divided by 255)
