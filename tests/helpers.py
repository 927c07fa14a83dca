"""Helpers of the tests: a tiny run's configuration, run files, a tiny ticket, crafting tickets."""
import hashlib
import json

import numpy as np

from tflottery.config import RunConfig
from tflottery.tickets.format import digest_of


def tiny_config(levels=2, branches=(), replicates=1, target_remaining=None, jit=False, population=1,
                **pruning) -> RunConfig:
    """LeNet-300-100 on the MNIST sample, 30 steps per level, evaluated every 15.

    XLA is off (compiling costs more than 30 steps save) except where a test asks for the
    default, as the resume and exact-zeros tests do.
    """
    return RunConfig.from_dict({
        "data": {"dataset": "mnist", "validation": 400},
        "pruning": pruning,
        "plan": {"levels": levels, "branches": list(branches), "replicates": replicates,
                 "target_remaining": target_remaining, "population": population},
        "training": {"steps": "30it", "eval_every": "15it", "batch_size": 50, "verbose": False, "jit_compile": jit,
                     "steps_per_execution": 5},
    })


def zeros_outside(weights: dict, masks: dict) -> bool:
    return all(np.all(weights[k][~m] == 0) for k, m in masks.items())


def run_files(path) -> dict:
    """{relative path: bytes} of every file of a run directory (locks, TensorBoard logs and the
    per-replicate table, which holds wall times, excluded)."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name not in (".lock", "replicates.csv") and "tensorboard" not in p.parts
            and ".units" not in p.relative_to(path).parts}


def assert_same_run(a, b, skip=("config.json",)) -> None:
    """Two run directories hold the same files, byte for byte: metrics.json apart from its wall time (and so the
    manifests' entries for it), `skip` (config.json records speed knobs such as --population) apart."""
    fa, fb = run_files(a), run_files(b)
    assert fa.keys() == fb.keys(), sorted(set(fa) ^ set(fb))
    for name, data in fa.items():
        if name.endswith("metrics.json"):
            mine, theirs = json.loads(data), json.loads(fb[name])
            mine.pop("wall_time_s"), theirs.pop("wall_time_s")
            assert mine == theirs, name
        elif name.endswith("manifest.json"):  # its metrics.json entry hashes the wall time too
            mine, theirs = json.loads(data), json.loads(fb[name])
            mine["files"].pop("metrics.json"), theirs["files"].pop("metrics.json")
            assert mine == theirs, name
        elif name not in skip:
            assert data == fb[name], name


def export_tiny_ticket(where, run, level: int):
    """Export level `level` of a tiny run (the session's `tiny_run`) as `where/ticket`."""
    from tflottery import export_ticket

    return export_ticket(run, level, where / "ticket"), run


def resign(path, files=None):
    """Recompute every listed file's sha256 and ticket.json's digest (what a knowing adversary does)."""
    meta = json.loads((path / "ticket.json").read_text())
    if files is not None:
        meta["files"] = files
    for name in list(meta["files"]):
        file = path / name
        if file.is_file() and not file.is_symlink():
            meta["files"][name] = hashlib.sha256(file.read_bytes()).hexdigest()
    meta["digest"] = digest_of(meta)
    (path / "ticket.json").write_text(json.dumps(meta))
    return meta


def lambda_model(path, marker):
    """model.json with a Lambda layer whose code would write `marker` if anything ran it."""
    from tflottery.core.keras_compat import keras

    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    code = eval(f"lambda t: (open({str(marker)!r}, 'w').write('ran'), t)[1]")  # no closure: serialisable
    x = keras.layers.Lambda(code, name="evil")(x)
    for name, units in (("fc1", 300), ("fc2", 100), ("output", 10)):
        x = keras.layers.Dense(units, name=name)(x)
    (path / "model.json").write_text(keras.Model(inputs, x, name="lenet_300_100").to_json())
    resign(path)


def kill_after(batches: int, message: str = "killed"):
    """A Keras callback that raises KeyboardInterrupt (as Ctrl-C would) at the end of batch `batches`."""
    from tflottery.core.keras_compat import keras

    class Kill(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.left = batches

        def on_train_batch_end(self, batch, logs=None):
            self.left -= 1
            if self.left == 0:
                raise KeyboardInterrupt(message)

    return Kill()
