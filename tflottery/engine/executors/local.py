"""The local executor: groups trained one after another in this process."""
from __future__ import annotations

from typing import Iterator


class LocalExecutor:
    """Trains each group with `trainer` here; claims as many units as one program holds (`population`), so
    that other processes sharing the run take the rest."""

    def __init__(self, trainer, population: int):
        self.trainer, self.population, self.capacity = trainer, population, population

    def run(self, groups: list) -> Iterator[tuple]:
        for group in groups:
            yield group, self.trainer.train(group)

    def describe(self) -> str:
        return "this process"
