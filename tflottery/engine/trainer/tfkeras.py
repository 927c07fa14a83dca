"""The tf_keras + tfmot trainer (the default, `--keras=2`): groups of units as population models,
compiled once per shape. TensorFlow loads when one is built, not when its kind is asked."""
from __future__ import annotations

import json

from tflottery.config import hashed_fields
from tflottery.engine.trainer.base import Trainer, UnitResult


class TfKerasTrainer(Trainer):
    """Trains units of one run's architecture (`base`, a plain tf_keras model) with frozen-mask wrappers
    on the `prune` layers; `callbacks` (Keras callbacks) see every segment's `fit`; `jit`: the run's kernels
    (`RunStore.kernels`), the same for every unit whatever its group."""

    name = "tf_keras"

    def __init__(self, base, prune: list, jit: bool = True, capacity: int = 1, callbacks: tuple = ()):
        self.base, self.prune, self.callbacks, self.capacity = base, list(prune), tuple(callbacks), capacity
        self.jit, self.options = jit, {}
        self._models: dict = {}

    def model_for(self, units: int, classes, training, steps):
        from tflottery.engine.optim import compile_model
        from tflottery.engine.trainer.population import population_model
        from tflottery.models.surgery import with_head

        key = (units, classes, json.dumps(hashed_fields(training), sort_keys=True), steps)
        if key not in self._models:
            base = self.base if classes is None else with_head(self.base, classes, 0)
            model = population_model(base, self.prune, units)
            self._models[key] = compile_model(model, training, steps, with_loss=False, jit=self.jit)
        return self._models[key]

    def train(self, units: list) -> list[UnitResult]:
        from tflottery.core.keras_compat import keras
        from tflottery.engine.optim import reset_optimizer
        from tflottery.engine.trainer.fit import train_group
        from tflottery.engine.trainer.population import PopulationData

        first = units[0]
        model = self.model_for(len(units), first.start.head_classes, first.training, first.steps)
        for c, unit in enumerate(units):
            model.set_tower(c, unit.weights(), unit.start.masks)
        reset_optimizer(model, first.start.start_step)
        started = [model.get_tower(c) for c in range(len(units))]
        keras.utils.set_random_seed(first.seed("keras"))  # dropout and the like (such units train alone)
        captures = set().union(*(u.start.captures for u in units))
        logs = [u.log_dir() for u in units]
        label = first.label if len(units) == 1 else f"{len(units)} units (level {first.level}): "
        results = train_group(model, PopulationData(first.data, [u.seed("data_order") for u in units]), first.data,
                              first.steps, start=first.start.start_step, end=first.start.end_step, captures=captures,
                              watch=first.start.watch, rewire=first.start.rewire, callbacks=self.callbacks, log_dirs=logs,
                              label=f"{label}: " if len(units) == 1 else label, verbose=first.training.verbose)
        out = []
        for c, (unit, result) in enumerate(zip(units, results)):
            result.captured = {s: w for s, w in result.captured.items() if s in unit.start.captures}
            masks = unit.start.masks
            if unit.start.rewire is not None:  # dynamic sparse training ends on masks of its own
                final = model.get_tower(c, "masks")
                masks = {k: final[k] for k in masks}
            out.append(UnitResult(masks, started[c], model.get_tower(c), result))
        return out

    def test_accuracy(self, weights: dict, masks: dict, data, training, steps) -> float:
        model = self.model_for(1, None, training, steps)
        model.set_tower(0, weights, masks)
        return float(model.evaluate_units(data.test)[0]["accuracy"])
