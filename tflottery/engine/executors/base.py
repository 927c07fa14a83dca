"""The executor seam: where the level loop's groups of units train.

An executor kind subclasses `Executor`, declares its typed `Options` (a dataclass: every field is
a flag `--executor.<field>` and a key of `executor_options`), and is one line in `EXECUTORS`.
The loop claims ready units, submits them as groups (`submit`, at most `capacity` units in flight), and
stores each group's results as it comes back (`next_done`), so whichever executor trains them, the run's
files are the same.
"""
from __future__ import annotations

from dataclasses import dataclass


class Executor:
    """Trains groups of units of one run with `trainer` (this process's) in programs of `population` units.

    The loop submits groups (`submit`) and takes them back one at a time as they finish (`next_done`), so that
    a unit whose parent just finished is claimed and submitted at once, never after a barrier. A group that
    `remote` keeps here trains in this process (the trainer); the others `start` elsewhere as futures."""

    name: str = ""

    @dataclass
    class Options:
        """An executor's settings (none)."""

    @classmethod
    def check(cls, options: "Executor.Options") -> None:
        """A ConfigError, before any work, if this executor cannot run here with `options` (a missing extra)."""

    def __init__(self, trainer, population: int, setup, options: "Executor.Options"):
        self.trainer, self.population, self.setup, self.options = trainer, population, setup, options
        self._here: list = []  # groups this process trains itself, in order
        self._futures: dict = {}  # future -> group, trained elsewhere

    @property
    def capacity(self) -> int:
        """How many units the loop may have submitted and not yet taken back."""
        return self.population

    @property
    def in_flight(self) -> int:
        """Units submitted and not yet taken back."""
        return sum(map(len, self._here)) + sum(map(len, self._futures.values()))

    def submit(self, group: list) -> None:
        if self.remote(group):
            self._futures[self.start(group)] = group
        else:
            self._here.append(group)

    def next_done(self) -> tuple:
        """(group, [UnitResult per unit] or None, the error it raised or None) of one submitted group: one
        trained here if any wait, else the first to finish elsewhere."""
        if self._here:
            group = self._here.pop(0)
            return (group, *_outcome(lambda: self.trainer.train(group)))
        future = self.wait_one()
        group = self._futures.pop(future)
        return (group, *_outcome(lambda: self.result(future)))

    def remote(self, group: list) -> bool:
        """Whether `group` trains elsewhere (`start`) rather than in this process."""
        return False

    def start(self, group: list):
        """A future of `group`'s results, trained elsewhere."""
        raise NotImplementedError

    def wait_one(self):
        """The first of the submitted futures to finish."""
        raise NotImplementedError

    def result(self, future) -> list:
        raise NotImplementedError

    def describe(self) -> str:
        """Where the groups train, for the start banner."""
        raise NotImplementedError

    def close(self) -> None:
        """Free what the executor started (processes, connections); groups not taken back are dropped."""
        self._here.clear()
        self._futures.clear()


def _outcome(train) -> tuple:
    try:
        return train(), None
    except Exception as error:  # the unit's failure, counted by the loop; a stop (KeyboardInterrupt) passes
        return None, error
