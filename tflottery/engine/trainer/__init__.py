"""Trainers: how a group of units trains (the seam where a backend plugs in).

`Trainer.train(units)` trains a group of units that share an architecture, data, training and
step range, and returns one `UnitResult` per unit, each exactly what training it alone gives.
`TfKerasTrainer` (tf_keras + tfmot wrappers) trains a group as one population model;
`Keras3Trainer` (`--keras=3`) trains units as Keras 3 models on TensorFlow or JAX.
"""
from tflottery.engine.trainer.base import Trainer, UnitResult

__all__ = ["Trainer", "UnitResult", "make_trainer"]


def make_trainer(setup, prune: list, callbacks: tuple = (), capacity: int = 1, jit: bool = True) -> Trainer:
    """The trainer of the run `setup` (its --keras), for its `prune` layers."""
    training = setup.config.training
    if training.keras == 3:
        from tflottery.engine.trainer.keras3 import Keras3Trainer

        return Keras3Trainer(setup.base, prune, training.backend, jit, capacity)
    from tflottery.engine.trainer.tfkeras import TfKerasTrainer

    return TfKerasTrainer(setup.base, prune, callbacks, capacity, jit)
