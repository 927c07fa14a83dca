"""A Keras 3 LeNet-300-100 run through `find_ticket(config, model=...)` in a process of its own (the backend is
chosen when Keras 3 loads), for the Keras 3 engine tests."""
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

FIND = r'''
import os, signal, sys, threading, time
sys.path.insert(0, sys.argv[3])
import tflottery
import keras
import numpy as np
from helpers import tiny_config
from tflottery import export_ticket, find_ticket, load_ticket

runs, mode = sys.argv[1], sys.argv[2]
keras.utils.set_random_seed(0)
inputs = keras.Input((28, 28, 1), name="image")
x = keras.layers.Flatten(name="flatten")(inputs)
x = keras.layers.Dense(300, activation="relu", name="fc1")(x)
x = keras.layers.Dense(100, activation="relu", name="fc2")(x)
model = keras.Model(inputs, keras.layers.Dense(10, name="output")(x), name="lenet3")
config = tiny_config(levels=int(sys.argv[5]), branches=("reinit", "random_prune"), replicates=int(sys.argv[6]),
                     population=int(sys.argv[4]))
config.runs_dir = runs
if mode == "kill":  # SIGKILL once level 1's ticket is stored: mid-way through level 1's baselines
    def killer():
        while not list(Path(runs).glob("*/replicate_0/level_1/ticket/metrics.json")):
            time.sleep(0.02)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGKILL)
    from pathlib import Path
    threading.Thread(target=killer, daemon=True).start()
from tflottery.engine.trainer.keras3 import Keras3Trainer
sizes, train = [], Keras3Trainer.train
Keras3Trainer.train = lambda self, units: sizes.append(len(units)) or train(self, units)  # the group sizes
run = find_ticket(config, model=model)
print("GROUPS", max(sizes, default=0))
print("RUN", run.path, len(run.trained))
if mode == "export":
    ticket = export_ticket(run, 3, f"{runs}/ticket")
    images = np.random.default_rng(0).random((32, 28, 28, 1)).astype("float32")
    np.save(f"{runs}/images.npy", images)
    np.save(f"{runs}/keras3_logits.npy", np.asarray(load_ticket(ticket, keras=3)(images)))
'''


def find_in(backend: str, runs: Path, mode: str, population: int = 1, levels: int = 3,
            replicates: int = 1) -> subprocess.CompletedProcess:
    env = {"KERAS_BACKEND": backend, "PATH": "/usr/bin:/bin", "HOME": str(runs.parent), "TFLOTTERY_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", FIND, str(runs), mode, str(TESTS), str(population), str(levels),
                           str(replicates)], capture_output=True, text=True, timeout=600, env=env)


def only_run(runs: Path) -> Path:
    (path,) = [p for p in runs.iterdir() if p.is_dir() and p.name.startswith("lenet3")]
    return path
