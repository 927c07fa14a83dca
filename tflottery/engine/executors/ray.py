"""The Ray executor: groups of units as Ray tasks on a cluster without shared storage; the driver writes the run.

The driver (`find --executor=ray`) claims every ready unit, groups them (a GPU task takes a
larger group: the population's GPU size), and submits each group as a task carrying what the
units need (the run's configuration and architecture, each unit's start weights, masks, seeds
and steps). A task loads the run's data on its node, trains the group exactly as this process
would (same trainer, same kernels: `numerics.json`), and returns the results; the driver stores
them as they arrive, so the run's files are the ones a local `find` writes. A task whose worker
dies is retried by Ray (`max_retries`). Units that read what only the driver has (their own
data, a watch such as early-bird's, dynamic sparse training's rewiring, TensorBoard logs) and branches with their own training
train in the driver.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from tflottery.core.errors import ConfigError
from tflottery.engine.scheduler import GPU_AUTO

MAX_RETRIES = 3
CPUS_PER_TASK = 1
_CACHE: dict = {}  # in a Ray worker process: (data, trainer) of the last run it trained


def check_ray():
    """The ray module, or one clear error naming the extra."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor=ray needs Ray, an optional extra: pip install 'tflottery[ray]' (on the driver "
                          "and on every node of the cluster), or use the default --executor=local.") from None
    return ray


@dataclass
class RemoteUnit:
    """What a task needs of a unit: the trainer's view of it, without the run's store or contexts."""

    label: str
    level: int
    start: Any  # a BranchStart with its weights drawn, no data, no watch
    training: Any
    steps: Any
    seeds: dict
    data: Any = None  # set in the task: the run's data, loaded there

    @classmethod
    def of(cls, unit) -> "RemoteUnit":
        start = dataclasses.replace(unit.start, weights=unit.weights())
        return cls(unit.label, unit.level, start, unit.training, unit.steps,
                   {p: unit.seed(p) for p in ("keras", "data_order")})

    def seed(self, purpose: str) -> int:
        return self.seeds[purpose]

    def weights(self) -> dict:
        return self.start.weights

    def log_dir(self) -> None:
        return None


def remote_ok(unit) -> bool:
    """Whether a unit can train in a task: the run's own data and training, nothing watching it, no logs."""
    start = unit.start
    return (start.data is None and start.training is None and start.watch is None and start.rewire is None
            and not unit.training.tensorboard)


def train_units(run: dict, units: list) -> list:
    """In a Ray worker: train one group of units of `run` (config, architecture, pruned layers, kernels)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(run["cpus"]))
    from tflottery import data as data_lib
    from tflottery.config import RunConfig
    from tflottery.core.keras_compat import keras
    from tflottery.engine.distribute import precision_policy
    from tflottery.engine.trainer.tfkeras import TfKerasTrainer

    config = RunConfig.from_dict(run["config"])
    with precision_policy(config.training.precision):
        if _CACHE.get("key") != run["key"]:
            _CACHE.clear()
            base = keras.models.model_from_json(run["model"])
            _CACHE.update(key=run["key"], data=data_lib.load(config.data, config.training.batch_size),
                          trainer=TfKerasTrainer(base, run["prune"], (), len(units), run["jit"]))
        for unit in units:
            unit.data = _CACHE["data"]
        return _CACHE["trainer"].train(units)


class RayExecutor:
    """Groups of units as Ray tasks (`address`: a running cluster's, e.g. ray://head:10001 or auto; None
    starts a local one on this machine). The driver claims every ready unit: Ray spreads them."""

    capacity = 1 << 30

    def __init__(self, trainer, population: int, setup=None, address: Optional[str] = None, gpus: Optional[int] = None):
        ray = check_ray()
        self.ray, self.trainer, self.setup = ray, trainer, setup
        if not ray.is_initialized():
            if address:
                ray.init(address=address, logging_level="warning", log_to_driver=True)
            else:
                ray.init(include_dashboard=False, logging_level="warning", log_to_driver=True)
        self.gpus = gpus if gpus is not None else int(ray.cluster_resources().get("GPU", 0) > 0)
        auto = setup is not None and setup.config.plan.population == "auto"
        self.population = GPU_AUTO if self.gpus and auto else population  # a GPU task takes a larger group
        self._run = None

    def describe(self) -> str:
        resources = self.ray.cluster_resources()
        return (f"Ray ({int(resources.get('CPU', 0))} CPUs, {int(resources.get('GPU', 0))} GPUs), tasks of "
                f"{'1 GPU' if self.gpus else f'{CPUS_PER_TASK} CPU'}")

    def run_ref(self):
        """The run's payload, put in Ray's object store once."""
        if self._run is None:
            import hashlib

            from tflottery.engine.imp import pruned_layers

            setup = self.setup
            run = {"config": setup.config.to_dict(), "model": setup.base.to_json(), "prune": pruned_layers(setup.plan),
                   "jit": self.trainer.jit, "cpus": CPUS_PER_TASK}
            run["key"] = hashlib.sha256(repr(sorted(run.items())).encode()).hexdigest()
            self._run = self.ray.put(run)
        return self._run

    def run(self, groups: list) -> Iterator[tuple]:
        ray = self.ray
        task = ray.remote(max_retries=MAX_RETRIES)(train_units).options(
            num_cpus=CPUS_PER_TASK, num_gpus=self.gpus, name="tflottery_train_units")
        pending = {}
        for group in groups:
            if all(remote_ok(u) for u in group):
                pending[task.remote(self.run_ref(), [RemoteUnit.of(u) for u in group])] = group
            else:
                yield group, self.trainer.train(group)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(done[0])
            yield group, ray.get(done[0])
