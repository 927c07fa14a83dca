"""Trainer kinds: chosen once per run from its training section, then everyone asks the chosen class.

Keras's own `keras/src/backend/__init__.py` is the model: one choice, then every caller asks the
chosen module. A trainer kind is a `Trainer` subclass in a file of its own and a line in `TRAINERS`;
it declares what it refuses for a run (`check`), its population rule (`population`), what it adds
to a run's identity (`identity`), and how it trains in another process (`payload`, `from_payload`).
Importing this module or a trainer's module loads no TensorFlow: the CLI asks kinds before it does.
"""
from __future__ import annotations

import importlib

from tflottery.core.errors import ConfigError

TRAINERS = {"tf_keras": "tflottery.engine.trainer.tfkeras:TfKerasTrainer",
            "keras3": "tflottery.engine.trainer.keras3:Keras3Trainer"}
BY_KERAS = {2: "tf_keras", 3: "keras3"}  # training.keras -> the trainer kind


def trainer_name(training) -> str:
    """The registered name of the trainer a TrainingConfig (or its dict) chooses."""
    version = training.get("keras", 2) if isinstance(training, dict) else training.keras
    if version not in BY_KERAS:
        raise ConfigError(f"training.keras={version!r}: choose {' or '.join(map(str, BY_KERAS))}.")
    return BY_KERAS[version]


def trainer_kind(training_or_name) -> type:
    """The Trainer class of a TrainingConfig, its dict, or a registered name."""
    name = training_or_name if isinstance(training_or_name, str) else trainer_name(training_or_name)
    if name not in TRAINERS:
        raise ConfigError(f"trainer {name!r} is not registered; trainers: {sorted(TRAINERS)}.")
    module, cls = TRAINERS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_trainer(setup, callbacks: tuple = (), capacity: int = 1, jit: bool = True):
    """The trainer of the run `setup` for its pruned layers (`setup.plan.pruned_layers`)."""
    return trainer_kind(setup.config.training).create(setup, callbacks, capacity, jit)
