"""Executors: where the level loop's groups of units train (`base.Executor`).

`local` trains them in this process, one group after another (any number of processes may do so
on one run: `tflottery worker`); `processes` in a pool of processes on this machine; `ray` as tasks
on a Ray cluster. For the last two this process is the only writer of the run. An executor is one
file and a line in `EXECUTORS`; its `Options` are flags (`--executor.<field>`).
"""
from __future__ import annotations

import dataclasses
import importlib
import logging

from tflottery.config import build
from tflottery.core.errors import ConfigError

EXECUTORS = {"local": "tflottery.engine.executors.local:LocalExecutor",
             "processes": "tflottery.engine.executors.processes:ProcessExecutor",
             "ray": "tflottery.engine.executors.ray:RayExecutor"}


def executor_kind(name: str) -> type:
    """The Executor class registered as `name`."""
    if not isinstance(name, str) or name not in EXECUTORS:
        raise ConfigError(f"--executor={name!r} is not an executor; choose one of {sorted(EXECUTORS)}.")
    module, cls = EXECUTORS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def executor_options(name: str, options: "dict | None" = None):
    """The typed Options of executor `name` from a dict (`--executor.<field>` flags), checked before any work
    (the executor's extra included)."""
    kind = executor_kind(name)
    fields = [f.name for f in dataclasses.fields(kind.Options)]
    if options and not fields:
        raise ConfigError(f"--executor={name} takes no options; got {', '.join(f'--executor.{k}' for k in options)}.")
    if options and set(options) - set(fields):
        raise ConfigError(f"--executor={name} takes {', '.join(f'--executor.{f}' for f in fields)}; got "
                          f"{', '.join(f'--executor.{k}' for k in sorted(set(options) - set(fields)))}.")
    typed = build(kind.Options, dict(options or {}), "executor")
    kind.check(typed)
    return typed


def check_executor(name: str, options: "dict | None" = None) -> str:
    """The executor's name, its options checked before any work (the Ray extra included)."""
    executor_options(name, options)
    return name


def options_dict(name: str, options: "dict | None" = None, ray_address: "str | None" = None) -> dict:
    """The options of executor `name` as a checked dict, the deprecated `ray_address` folded in (one warning line)."""
    if options is not None and not isinstance(options, dict):
        raise ConfigError(f"executor_options={options!r} must be a dict of the executor's options, e.g. "
                          "{'address': 'auto'} for executor='ray'.")
    options = dict(options or {})
    if ray_address is not None:
        if name != "ray" or not isinstance(ray_address, str):
            raise ConfigError(f"--ray_address={ray_address!r} is the address of a Ray cluster (a string) and goes with "
                              "--executor=ray.")
        logging.getLogger("tflottery").warning("--ray_address (ray_address=) is deprecated and goes in 0.5: use "
                                               "--executor.address (executor_options={'address': ...}).")
        options["address"] = ray_address
    check_executor(name, options)
    return options


def make_executor(name: str, trainer, population: int, setup=None, options: "dict | None" = None):
    """The executor `name` over `trainer` (this process's), grouping `population` units per program."""
    return executor_kind(name)(trainer, population, setup, executor_options(name, options))
