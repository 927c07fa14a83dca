"""IMP inside a user's own `model.fit`: `prune_imp` (tfmot wrappers with IMPSchedules) and the `Rewind` callback.

With tfmot's wrappers carrying `IMPSchedule`s and `UpdatePruningStep`, the schedule prunes at
the first step of every level (drawing the mask from the level before, fully trained). Right
after that step, `Rewind` sets the survivors back to their values at the rewind step, resets
the optimizer's moments (and its step counter to the rewind step, so a learning-rate schedule
starts each level where the first did), and the level trains on. The step that pruned is spent
drawing the mask: its update is rewound away, so levels after the first train `level_steps - 1`
steps from the rewind point. After every step it sets pruned weights to exactly zero (tfmot
alone masks only the forward pass, so momentum would move them), which also makes tfmot's
magnitude ranking at each event the ranking of the survivors: the masks `tflottery find` draws.

Keras logs get `imp_level` and `imp_remaining` (the fraction of prunable weights kept) at every
epoch's end, so `CSVLogger` and `TensorBoard` record them when listed after `Rewind`.
"""
from __future__ import annotations

from typing import Optional

import tensorflow as tf
import tensorflow_model_optimization as tfmot

from tflottery.core.errors import ConfigError
from tflottery.core.keras_compat import keras, require_tf_keras
from tflottery.core.steps import Step
from tflottery.models.weights import get_weights, set_weights
from tflottery.pruning import wrap
from tflottery.pruning.resolve import bind
from tflottery.pruning.schedule import IMPSchedule
from tflottery.pruning.wrap import PruneLowMagnitude


class Rewind(keras.callbacks.Callback):
    """Rewind the survivors to their values at step `to` ("0it", "500it", "2ep") after every IMP pruning event."""

    def __init__(self, to: str = "0it", reset_optimizer: bool = True):
        super().__init__()
        self.to = Step.parse(to, "Rewind to")
        self.reset_optimizer = reset_optimizer
        self.rewind_step: Optional[int] = None
        self.rewind_weights: Optional[list] = None
        self.step, self.events, self.level = 0, [], 0
        self.layers, self.schedule = [], None

    # ------------------------------------------------------------------ set-up and checks
    def on_train_begin(self, logs=None):
        self.layers = [layer for layer in self.model.layers if isinstance(layer, PruneLowMagnitude) and layer.pruning_vars]
        schedules = [layer.pruning_schedule for layer in self.layers]
        if not self.layers or not all(isinstance(s, IMPSchedule) for s in schedules):
            raise ConfigError("Rewind needs a model whose prunable layers are wrapped by tfmot's prune_low_magnitude "
                              "with a tflottery.IMPSchedule (or made by tflottery.prune_imp); this model has "
                              f"{len(self.layers)} wrapped layer(s) and schedules {sorted({type(s).__name__ for s in schedules})}.")
        if len({(s.level_steps, s.levels) for s in schedules}) != 1:
            raise ConfigError("Rewind needs every layer's IMPSchedule to share level_steps and levels.")
        self.schedule = schedules[0]
        if getattr(self.model, "_steps_per_execution", None) is not None and int(self.model._steps_per_execution) > 1:
            raise ConfigError("Rewind keeps pruned weights exactly zero after every step and must see every step: "
                              "compile the model with steps_per_execution=1.")
        steps_per_epoch = self.params.get("steps") or 0
        self.rewind_step = self.to.to_steps(steps_per_epoch)
        if self.to.epochs and not steps_per_epoch:
            raise ConfigError(f"Rewind to={self.to}: an epoch count needs fit's steps per epoch; give steps ('500it').")
        if self.rewind_step >= self.schedule.level_steps:
            raise ConfigError(f"Rewind to step {self.rewind_step} is not inside the first level "
                              f"(level_steps={self.schedule.level_steps}): rewind to an earlier step, or make levels longer.")
        if self.rewind_step == 0 and self.rewind_weights is None:
            self.rewind_weights = get_weights(self.model)

    def on_train_batch_begin(self, batch, logs=None):
        if self.step == 0 and any(int(layer.pruning_step.numpy()) < 0 for layer in self.layers):
            raise ConfigError("The IMPSchedule's wrappers never count steps: add "
                              "tfmot.sparsity.keras.UpdatePruningStep() to fit's callbacks.")

    # ------------------------------------------------------------------ every step
    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        for weight, mask, _ in self._pruning_vars():  # pruned weights exactly zero after every step
            weight.assign(weight * tf.cast(mask, weight.dtype))
        if self.step == self.rewind_step and self.rewind_weights is None:
            self.rewind_weights = get_weights(self.model)
        level = self.schedule.level_of(self.step)
        if level > self.level and (self.step - 1) % self.schedule.level_steps == 0 and level <= self.schedule.levels:
            self.level = level
            self._rewind()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["imp_level"] = self.level
            logs["imp_remaining"] = self.remaining()

    # ------------------------------------------------------------------ the rewind
    def _rewind(self) -> None:
        """Every weight back to the rewind step (biases and norms too), pruned kernels masked."""
        set_weights(self.model, self.rewind_weights)
        for weight, mask, _ in self._pruning_vars():
            weight.assign(weight * tf.cast(mask, weight.dtype))
        if self.reset_optimizer:
            optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
            for v in optimizer.variables:
                v.assign(tf.zeros_like(v))
            optimizer.iterations.assign(self.rewind_step)
        self.events.append({"step": self.step, "level": self.level, "remaining": self.remaining()})

    def remaining(self) -> float:
        masks = [m.numpy() for _, m, _ in self._pruning_vars()]
        return float(sum(m.sum() for m in masks) / max(1, sum(m.size for m in masks)))

    def _pruning_vars(self) -> list:
        return [v for layer in self.layers for v in layer.pruning_vars]

    def masks(self) -> dict:
        """{"<layer>/kernel": bool array} of the wrappers now."""
        return {f"{layer.layer.name}/kernel": m.numpy().astype(bool) for layer in self.layers
                for _, m, _ in layer.pruning_vars}

    def record(self) -> dict:
        """What a ticket of the model as it is now holds (`tflottery.export_ticket(rewind, out)` writes it):
        the plain architecture, the masks, the rewind weights it trains from (masked), the trained weights."""
        from tflottery.pruning.masks import remaining

        if self.rewind_weights is None:
            raise ConfigError("Rewind has no rewind weights yet: export after fit has run.")
        masks = self.masks()
        plain = wrap.strip(self.model)
        return {"architecture": plain.to_json(), "name": plain.name, "masks": masks, "final": get_weights(self.model),
                "start": {k: v * masks[k] if k in masks else v for k, v in self.rewind_weights.items()},
                "rewind": str(self.to),
                "metrics": {"level": self.level, "replicate": 0, "branch": "ticket", "remaining": remaining(masks)["total"],
                            "rewind_step": self.rewind_step, "history": [], "events": self.events}}


def prune_imp(model: keras.Model, level_steps: int, levels: int, pruning: "dict | None" = None) -> keras.Model:
    """`model` wrapped by tfmot's `prune_low_magnitude`, each prunable layer with an `IMPSchedule` holding
    the layerwise plan's exact survivor fractions (`pruning`: a PruningConfig dict; default dense 20%,
    conv 10%, the output at half rate). Train it with `UpdatePruningStep` and `Rewind`."""
    from tflottery.config import PruningConfig

    require_tf_keras(model)
    config = PruningConfig.from_dict(pruning or {})
    config.validate()
    if config.strategy != "layerwise" or config.structure:
        raise ConfigError(f"prune_imp prunes layer by layer inside your fit (tfmot's schedules are per layer, weight "
                          f"by weight); strategy={config.strategy!r}" + (" with a structure" if config.structure else "")
                          + " needs `tflottery find`, which draws its masks between levels.")
    kinds = wrap.prunable_kinds(model)
    if not kinds:
        raise ConfigError(f"Model {model.name!r} has no Dense or Conv layer to prune.")
    strategy = bind(config, kinds, wrap.kernel_shapes(model))
    plan = strategy.plan(levels)
    schedules = {k.split("/")[0]: IMPSchedule(strategy.rates[k], level_steps, levels,
                                              [row[k] / strategy.sizes[k] for row in plan])
                 for k in strategy.pruned}

    def clone(layer):
        if layer.name in schedules:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedules[layer.name])
        return layer

    return keras.models.clone_model(model, clone_function=clone)
