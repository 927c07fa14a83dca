"""The `Rewind` callback: IMP with rewinding inside one ordinary `model.fit`.

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

from tflottery.config import Step
from tflottery.errors import ConfigError
from tflottery.keras_compat import keras
from tflottery.pruning.schedule import IMPSchedule
from tflottery.pruning.wrap import PruneLowMagnitude, get_weights, set_weights


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

    def export_ticket(self, out, data=None, overwrite: bool = False):
        """Write the model as it is now (the last level) as a ticket: trained weights, masks, and the
        rewind weights it trains from. `data` (a tflottery Data) is recorded if given."""
        import json
        import tempfile
        from pathlib import Path

        from tflottery.engine.store import LAYOUT, TICKET, LevelRecord, RunStore
        from tflottery.files import write_json
        from tflottery.pruning.masks import remaining
        from tflottery.pruning.wrap import strip
        from tflottery.tickets import export_ticket

        if self.rewind_weights is None:
            raise ConfigError("Rewind has no rewind weights yet: export after fit has run.")
        masks = self.masks()
        with tempfile.TemporaryDirectory() as tmp:
            store = RunStore(Path(tmp) / "own-fit")
            plain = strip(self.model)
            write_json(store.path / "spec.json", {"layout": LAYOUT, "name": store.name, "identity": {"own_fit": True}})
            write_json(store.path / "config.json", {"model": {"name": plain.name}, "pruning": {"rewind": str(self.to)},
                                                    "training": {}, "seed": 0})
            write_json(store.path / "model.json", json.loads(plain.to_json()))
            write_json(store.path / "data.json", data.describe() if data is not None else {})
            start = {k: v * masks[k] if k in masks else v for k, v in self.rewind_weights.items()}
            metrics = {"level": self.level, "branch": TICKET, "remaining": remaining(masks)["total"],
                       "rewind_step": self.rewind_step, "history": [], "events": self.events}
            store.replicate(0).save_level(self.level, TICKET, LevelRecord(masks, start, get_weights(self.model), metrics))
            return export_ticket(store, self.level, out, overwrite=overwrite)

