"""The trainer seam: what the level loop asks of a backend."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class UnitResult:
    """What a unit's training gives: its final masks, the weights it started from, its trained weights."""

    masks: dict
    started: dict
    final: dict
    result: Any  # a LevelResult: history, captured weights, wall time


class Trainer:
    """Trains groups of units; `capacity` says how many units it trains as one program at most."""

    capacity: int = 1

    def train(self, units: list) -> list[UnitResult]:
        raise NotImplementedError

    def test_accuracy(self, weights: dict, masks: dict, data, training, steps) -> float:
        """The test accuracy of the run's network at `weights` under `masks`, untrained."""
        raise NotImplementedError
