"""Trainers: how a group of units trains (the seam where a backend plugs in).

`Trainer.train(units)` trains a group of units that share an architecture, data, training and
step range, and returns one `UnitResult` per unit, each exactly what training it alone gives.
`TfKerasTrainer` (tf_keras + tfmot wrappers) trains a group as one population model;
`Keras3Trainer` (`--keras=3`) trains units as Keras 3 models on TensorFlow or JAX. Which one a run
uses is chosen once, in `registry` (`trainer_kind`).
"""
from tflottery.engine.trainer.base import Trainer, UnitResult
from tflottery.engine.trainer.registry import TRAINERS, make_trainer, trainer_kind

__all__ = ["TRAINERS", "Trainer", "UnitResult", "make_trainer", "trainer_kind"]
