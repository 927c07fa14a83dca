"""The local executor: groups trained one after another in this process."""
from __future__ import annotations

from tflottery.engine.executors.base import Executor


class LocalExecutor(Executor):
    """Trains each group with the trainer here; claims as many units as one program holds (`population`), so
    that other processes sharing the run take the rest."""

    name = "local"

    def describe(self) -> str:
        return "this process"
