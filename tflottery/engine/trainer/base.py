"""The trainer seam: what the level loop asks of a backend."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


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


class Tally:
    """Mean cross-entropy (in float64, from logits) and top-1 accuracy over batches: every trainer's evaluation."""

    def __init__(self):
        self.loss, self.correct, self.count = 0.0, 0, 0

    def add(self, logits, labels) -> None:
        z, y = np.asarray(logits).astype(np.float64), np.asarray(labels).astype(np.int64)
        top = z.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
        self.loss += float((log_norm - z[np.arange(len(y)), y]).sum())
        self.correct += int((z.argmax(axis=1) == y).sum())
        self.count += len(y)

    def result(self) -> dict:
        return {"loss": self.loss / self.count, "accuracy": self.correct / self.count}
