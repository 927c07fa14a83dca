"""The executor seam: where the level loop's groups of units train.

An executor kind subclasses `Executor`, declares its typed `Options` (a dataclass: every field is
a flag `--executor.<field>` and a key of `executor_options`), and is one line in `EXECUTORS`.
The loop claims up to `capacity` ready units, hands them over as groups (`run`), and stores each
group's results as they come back, so whichever executor trains them, the run's files are the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator


class Executor:
    """Trains groups of units of one run with `trainer` (this process's) in programs of `population` units."""

    name: str = ""

    @dataclass
    class Options:
        """An executor's settings (none)."""

    @classmethod
    def check(cls, options: "Executor.Options") -> None:
        """A ConfigError, before any work, if this executor cannot run here with `options` (a missing extra)."""

    def __init__(self, trainer, population: int, setup, options: "Executor.Options"):
        self.trainer, self.population, self.setup, self.options = trainer, population, setup, options

    @property
    def capacity(self) -> int:
        """How many ready units the loop claims for one call of `run`."""
        return self.population

    def run(self, groups: list) -> Iterator[tuple]:
        """(group, [UnitResult per unit]) for every group, in any order, as each finishes."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where the groups train, for the start banner."""
        raise NotImplementedError

    def close(self) -> None:
        """Free what the executor started (processes, connections)."""
