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
    """Trains groups of units; `capacity` says how many units it trains as one program at most.

    A subclass is a trainer kind (registered in `registry.TRAINERS`): its class methods answer, before
    any work and without TensorFlow, what the run needs to know of it."""

    name: str = ""  # its name in the registry
    capacity: int = 1

    # ------------------------------------------------------------------ the kind, asked before any work
    @classmethod
    def identity(cls, training) -> dict:
        """What this trainer adds to a run's training identity (kernels of another library: another run)."""
        return {}

    @classmethod
    def check(cls, setup, callbacks: tuple = (), executor: str = "local") -> None:
        """A ConfigError naming what of the run `setup` this trainer does not train (with `callbacks`, on
        `executor`), before any work."""

    @classmethod
    def check_analysis(cls, analysis: str, run) -> None:
        """A ConfigError if this trainer's runs cannot feed `analysis` (e.g. "instability")."""

    @classmethod
    def population(cls, config, weights: int, distributed: bool = False) -> "tuple[int, str]":
        """(units per program, why) for the run `config`'s `--population`, `weights` per unit."""
        from tflottery.engine import scheduler

        return scheduler.population_size(config.plan.population, weights, distributed)

    @classmethod
    def options_of(cls, training) -> dict:
        """This kind's own constructor options from a run's TrainingConfig (plain data: they travel)."""
        return {}

    @classmethod
    def create(cls, setup, callbacks: tuple = (), capacity: int = 1, jit: bool = True) -> "Trainer":
        """The trainer of the run `setup`, for its plan's pruned layers."""
        return cls(setup.base, setup.plan.pruned_layers, jit=jit, capacity=capacity, callbacks=tuple(callbacks),
                   **cls.options_of(setup.config.training))

    def payload(self) -> dict:
        """What another process needs to build this trainer (`from_payload`), as plain data."""
        return {"trainer": self.name, "prune": list(self.prune), "jit": self.jit, "options": self.options}

    @staticmethod
    def from_payload(base, payload: dict, capacity: int) -> "Trainer":
        """The trainer of `payload` over architecture `base` (a plain tf_keras model), in any process."""
        from tflottery.engine.trainer.registry import trainer_kind

        return trainer_kind(payload["trainer"])(base, payload["prune"], jit=payload["jit"], capacity=capacity,
                                                **payload["options"])

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
