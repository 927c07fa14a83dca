"""Units that train in another process (a Ray task, a pool process): what travels, and the entry there.

The driver claims units, draws each one's start (`RemoteUnit.of`), and sends groups with the run's
payload (`run_payload`: configuration, architecture, the trainer's own payload). The other process
loads the run's data once, builds the same trainer from the payload (`Trainer.from_payload`, the
trainer kind the run names) and trains the group exactly as the driver would; the driver stores the
results, so the run's files are the ones a local `find` writes. Units that read what only the driver
has (their own data, a watch such as early-bird's, dynamic sparse training's rewiring, TensorBoard
logs) and branches with their own training train in the driver.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from typing import Any

_CACHE: dict = {}  # in a remote process: (data, trainer) of the last run it trained


@dataclass
class RemoteUnit:
    """What another process needs of a unit: the trainer's view of it, without the run's store or contexts."""

    label: str
    level: int
    start: Any  # a BranchStart with its weights drawn, no data, no watch
    training: Any
    steps: Any
    seeds: dict
    data: Any = None  # set there: the run's data, loaded there

    @classmethod
    def of(cls, unit) -> "RemoteUnit":
        start = dataclasses.replace(unit.start, weights=unit.weights(), data=None)  # data: loaded there
        return cls(unit.label, unit.level, start, unit.training, unit.steps,
                   {p: unit.seed(p) for p in ("keras", "data_order")})

    def seed(self, purpose: str) -> int:
        return self.seeds[purpose]

    def weights(self) -> dict:
        return self.start.weights

    def log_dir(self) -> None:
        return None


def remote_ok(unit) -> bool:
    """Whether a unit can train in another process: the run's own data or a task that process can load, nothing
    watching it, no logs."""
    start = unit.start
    return ((start.data is None and start.training is None) or start.task is not None) and start.watch is None \
        and start.rewire is None and not unit.training.tensorboard


def run_payload(setup, trainer, cpus: int) -> dict:
    """What every remote group of the run `setup` needs, as plain data, with a key naming it."""
    run = {"config": setup.config.to_dict(), "model": setup.base.to_json(), "trainer": trainer.payload(), "cpus": cpus}
    run["key"] = hashlib.sha256(repr(sorted(run.items())).encode()).hexdigest()
    return run


def train_units(run: dict, units: list) -> list:
    """In another process: train one group of units of `run` (`run_payload`) with the run's trainer kind."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(run["cpus"]))
    from tflottery import data as data_lib
    from tflottery.config import RunConfig
    from tflottery.core.keras_compat import keras
    from tflottery.engine.context import load_target
    from tflottery.engine.distribute import precision_policy
    from tflottery.engine.trainer import Trainer

    config = RunConfig.from_dict(run["config"])
    with precision_policy(units[0].training.precision):  # a group shares its training
        if _CACHE.get("key") != run["key"]:
            _CACHE.clear()
            base = keras.models.model_from_json(run["model"])
            _CACHE.update(key=run["key"], data=data_lib.load(config.data, config.training.batch_size, config.runs_dir),
                          trainer=Trainer.from_payload(base, run["trainer"], len(units)), targets={})
        for unit in units:
            task = unit.start.task
            unit.data = _CACHE["data"] if task is None else load_target(_CACHE["targets"], *task, config.runs_dir)[0]
        return _CACHE["trainer"].train(units)
