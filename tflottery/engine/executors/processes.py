"""The process-pool executor: groups of units in worker processes of this machine; this process writes the run.

For one big machine: `--executor=processes --executor.processes=N` starts N processes (spawned: a
forked TensorFlow is not safe), each loading the run's data once and training whole groups with
the run's trainer kind (`remote.train_units`, what a Ray task runs), while this process claims
ready units, draws their starts and stores their results as they come back. Units that need what
only this process has train here (`remote.remote_ok`). The files are those a local `find` writes.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Optional

from tflottery.core.errors import ConfigError
from tflottery.engine.executors.base import Executor
from tflottery.engine.executors.remote import RemoteUnit, remote_ok, run_payload, train_units


def _threads(intra: int, inter: int) -> None:
    """In a pool process, before TensorFlow loads: its share of the cores."""
    os.environ["TF_NUM_INTRAOP_THREADS"], os.environ["TF_NUM_INTEROP_THREADS"] = str(intra), str(inter)


class ProcessExecutor(Executor):
    """Groups of units in a pool of processes on this machine; claims a group for every process."""

    name = "processes"

    @dataclass
    class Options:
        """processes: how many worker processes (default: this machine's cores)."""

        processes: Optional[int] = None

    @classmethod
    def check(cls, options: "ProcessExecutor.Options") -> None:
        if options.processes is not None and not 1 <= options.processes <= 1024:
            raise ConfigError(f"--executor.processes={options.processes}: give a number of processes from 1 to 1024 "
                              "(default: this machine's cores).")

    def __init__(self, trainer, population: int, setup, options: "ProcessExecutor.Options"):
        super().__init__(trainer, population, setup, options)
        cores = os.cpu_count() or 1
        self.processes = options.processes or cores
        self.cores_each = max(1, cores // self.processes)
        self._pool: Optional[ProcessPoolExecutor] = None
        self._run: Optional[dict] = None

    @property
    def capacity(self) -> int:
        return self.population * self.processes

    def describe(self) -> str:
        return f"{self.processes} processes of {self.cores_each} core(s)"

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_threads, initargs=(1, self.cores_each))
            self._run = run_payload(self.setup, self.trainer, self.cores_each)
        return self._pool

    def remote(self, group: list) -> bool:
        return all(remote_ok(u) for u in group)

    def start(self, group: list):
        pool = self.pool()
        return pool.submit(train_units, self._run, [RemoteUnit.of(u) for u in group])

    def wait_one(self):
        done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
        return next(iter(done))

    def result(self, future) -> list:
        return future.result()

    def close(self) -> None:
        """Shut the pool down; groups still training (a stop: SIGTERM, Ctrl-C) end with their processes."""
        stopped = bool(self._futures)
        super().close()
        if self._pool is not None:
            if stopped:
                for process in list(getattr(self._pool, "_processes", {}).values()):
                    process.terminate()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
