"""Our tfmot `PruningSchedule`: masks are frozen while an IMP level trains."""
from __future__ import annotations

import tensorflow as tf
import tensorflow_model_optimization as tfmot


class IMPSchedule(tfmot.sparsity.keras.PruningSchedule):
    """The schedule tfmot's wrappers consult at every training step: never prune during a level.

    In iterative magnitude pruning the mask changes only *between* levels: the lottery driver
    computes the next mask from the trained weights (layerwise or with one global threshold,
    which tfmot's per-layer update cannot express), rewinds the survivors and writes the mask
    into the wrappers. Inside a level the mask must stay fixed, which is what this schedule
    tells tfmot. It is serialisable, so a wrapped model saves and loads like any tfmot model.
    """

    def __call__(self, step):
        return tf.constant(False), tf.constant(0.0, tf.float32)

    def get_config(self):
        return {"class_name": self.__class__.__name__, "config": {}}
