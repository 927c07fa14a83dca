"""Trainers: how a group of units trains (the seam where a backend plugs in).

`Trainer.train(units)` trains a group of units that share an architecture, data, training and
step range, and returns one `UnitResult` per unit, each exactly what training it alone gives.
`TfKerasTrainer` (tf_keras + tfmot wrappers) trains a group as one population model.
"""
from tflottery.engine.trainer.base import Trainer, UnitResult

__all__ = ["Trainer", "UnitResult"]
