"""Executors: where the level loop's groups of units train.

`local` trains them in this process, one group after another (any number of processes may do so
on one run: `tflottery worker`); `ray` sends them to a Ray cluster as tasks, the driver the only
writer of the run. An executor is one file and a line here.
"""
from __future__ import annotations

from tflottery.core.errors import ConfigError

EXECUTORS = {"local": "tflottery.engine.executors.local:LocalExecutor",
             "ray": "tflottery.engine.executors.ray:RayExecutor"}


def check_executor(name: str) -> str:
    """The executor's name, checked before any work (the Ray extra included)."""
    if name not in EXECUTORS:
        raise ConfigError(f"--executor={name!r} is not an executor; choose one of {sorted(EXECUTORS)}.")
    if name == "ray":
        from tflottery.engine.executors.ray import check_ray

        check_ray()
    return name


def make_executor(name: str, trainer, population: int, **options):
    """The executor `name` over `trainer` (this process's), grouping `population` units per program."""
    import importlib

    module, cls = EXECUTORS[check_executor(name)].split(":")
    return getattr(importlib.import_module(module), cls)(trainer, population, **options)
