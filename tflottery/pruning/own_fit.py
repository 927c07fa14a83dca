"""IMP inside a user's own `model.fit`: `prune_imp` (tfmot wrappers with IMPSchedules) and the `Rewind` callback.

One fit is laid out as IMP (see `IMPSchedule`): level 0 trains T steps, keeping the weights at
the rewind step k; each later level trains T - k steps. Just before the first step of level L,
`Rewind` draws the level's mask from the trained weights, smallest magnitude first, to the
layerwise plan's exact counts (the masks `tflottery find` draws), sets every weight back to its
value at step k with the mask applied, and resets the optimizer the way `find` does: moments and
step counter zero (Adam's bias correction restarts), the learning-rate schedule at step k. tfmot's
own update at that step then keeps the mask as it is. After every step it sets pruned weights to
exactly zero (tfmot alone masks only the forward pass, so momentum would move them). Targets no
tfmot wrapper holds (embeddings, attention, recurrent kernels) carry a `VariableMask` with their
levels' fractions, which the optimizer applies after every update; their masks, which a checkpoint
does not hold, are kept in `state`.

The step count is tfmot's own (the wrappers' `pruning_step`, saved with the model), so a fit
resumed from a `ModelCheckpoint` knows where it is; what the model does not hold (the weights at
step k, the events so far) `Rewind(state=folder)` keeps on disk, and a resumed fit without it is
refused in one line. Keras logs get `imp_level` and `imp_remaining` at every epoch's end.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from tflottery.core.errors import ConfigError
from tflottery.core.keras_compat import keras, require_tf_keras
from tflottery.core.schedules import WarmupPiecewise
from tflottery.core.steps import Step
from tflottery.models.weights import get_weights, set_weights, weight_variables
from tflottery.pruning import masks as mask_lib
from tflottery.pruning import wrap
from tflottery.pruning.resolve import bind
from tflottery.pruning.schedule import IMPSchedule
from tflottery.pruning.wrap import PruneLowMagnitude


class Rewind(keras.callbacks.Callback):
    """IMP with rewinding to step `to` ("0it", "500it", "2ep") in a fit of a model made by `prune_imp`.

    `state`: a folder where the weights at the rewind step and the events so far are kept, so that a
    fit resumed from a checkpoint continues exactly (give the same folder to both fits).
    """

    def __init__(self, to: str = "0it", reset_optimizer: bool = True, state: "str | Path | None" = None):
        super().__init__()
        self.to = Step.parse(to, "Rewind to")
        self.reset_optimizer = reset_optimizer
        self.state = Path(state) if state is not None else None
        self.rewind_step: Optional[int] = None
        self.rewind_weights: Optional[dict] = None
        self.events, self.level, self.logs = [], 0, {}
        self.layers, self.schedule, self._rewind_saved = [], None, False
        self.kept, self.pairs = {}, []  # path -> each level's survivor fraction; (weight, mask) variables

    # ------------------------------------------------------------------ set-up and checks
    def on_train_begin(self, logs=None):
        self.layers = [layer for layer in self.model.layers if isinstance(layer, PruneLowMagnitude) and layer.pruning_vars]
        schedules = [layer.pruning_schedule for layer in self.layers]
        if not self.layers or not all(isinstance(s, IMPSchedule) for s in schedules):
            raise ConfigError("Rewind needs a model whose prunable layers are wrapped by tfmot's prune_low_magnitude "
                              "with a tflottery.IMPSchedule (or made by tflottery.prune_imp); this model has "
                              f"{len(self.layers)} wrapped layer(s) and schedules {sorted({type(s).__name__ for s in schedules})}.")
        if len({(s.level_steps, s.levels, s.rewind_step) for s in schedules}) != 1:
            raise ConfigError("Rewind needs every layer's IMPSchedule to share level_steps, levels and rewind_step.")
        self.schedule = schedules[0]
        weights = weight_variables(self.model)
        self._reattach(weights)
        masked = wrap.mask_variables(self.model)
        wrapped = {f"{layer.layer.name}/kernel": layer.pruning_schedule.kept for layer in self.layers}
        self.kept = {path: wrapped.get(path, getattr(weights[path].constraint, "kept", None)) for path in masked}
        if any(kept is None or len(kept) != len(self.schedule.kept) for kept in self.kept.values()):
            raise ConfigError("Rewind needs every masked weight scheduled by one prune_imp: some carry a mask without "
                              "IMP levels; make the model with tflottery.prune_imp.")
        self.pairs = [(weights[path], mask) for path, mask in masked.items()]
        if getattr(self.model, "_steps_per_execution", None) is not None and int(self.model._steps_per_execution) > 1:
            raise ConfigError("Rewind keeps pruned weights exactly zero after every step and must see every step: "
                              "compile the model with steps_per_execution=1.")
        steps_per_epoch = self.params.get("steps") or 0
        if self.to.epochs and not steps_per_epoch:
            raise ConfigError(f"Rewind to={self.to}: an epoch count needs fit's steps per epoch; give steps ('500it').")
        self.rewind_step = self.to.to_steps(steps_per_epoch)
        if self.rewind_step != self.schedule.rewind_step:
            raise ConfigError(f"Rewind to step {self.rewind_step} but the model's IMPSchedule lays out levels rewound to "
                              f"step {self.schedule.rewind_step}: give prune_imp(..., rewind='{self.rewind_step}it') and "
                              "Rewind the same step.")
        self._check_learning_rate()
        wrappers = [layer for layer in self.model.layers if isinstance(layer, PruneLowMagnitude)]
        if any(int(layer.pruning_step.numpy()) < 0 for layer in wrappers):  # a fresh model: tfmot's count at 0
            keras.backend.batch_set_value([(layer.pruning_step, 0) for layer in wrappers])
        self._resume(self.done())

    def _check_learning_rate(self) -> None:
        rate = getattr(getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer), "_learning_rate", None)
        if self.rewind_step and isinstance(rate, keras.optimizers.schedules.LearningRateSchedule) \
                and not isinstance(rate, WarmupPiecewise):
            raise ConfigError(f"Rewind to step {self.rewind_step} restarts the optimizer's counter at each level, so a "
                              f"{type(rate).__name__} would restart at step 0 instead of {self.rewind_step}: use "
                              "tflottery.WarmupPiecewise (which Rewind starts at the rewind step) or a constant rate.")

    def done(self) -> int:
        """Steps trained so far: tfmot's own count, kept in the model (so it survives a checkpoint)."""
        steps = {max(0, int(layer.pruning_step.numpy())) for layer in self.layers}
        if len(steps) != 1:
            raise ConfigError(f"The wrappers disagree on the step ({sorted(steps)}): the model was not trained in one fit.")
        return steps.pop()

    def _resume(self, done: int) -> None:
        """Where a fit of a model that has trained `done` steps stands: levels pruned (those that began before
        `done`), the rewind weights and events from `state` when this callback has not seen them."""
        self.level = self.schedule.level_of(done - 1) if done else 0
        if self.rewind_weights is not None:  # the same callback, fit again
            return
        if not done:
            if self.rewind_step == 0:
                self.rewind_weights = get_weights(self.model)
            return
        saved = self._load_state()
        if saved is None:
            if done >= self.rewind_step:
                raise ConfigError(f"This model has trained {done} steps already and Rewind has not seen its weights at "
                                  f"step {self.rewind_step}: to resume IMP from a checkpoint, give Rewind(state=FOLDER) "
                                  "in the first fit and in this one.")
            return
        shapes = {k: v.shape for k, v in get_weights(self.model).items()}
        if saved["rewind_step"] != self.rewind_step or {k: v.shape for k, v in self.rewind_weights.items()} != shapes:
            raise ConfigError(f"{self.state} holds the IMP state of another fit (rewinding to step "
                              f"{saved['rewind_step']}, {len(self.rewind_weights)} weights) than this model's (step "
                              f"{self.rewind_step}, {len(shapes)} weights): give each fit its own state folder.")
        self.events = [e for e in saved["events"] if e["step"] < done]  # later ones the checkpoint never saw
        if self.level >= 1:
            self._learning_rate_from_rewind()
            self._restore_variable_masks()

    def _restore_variable_masks(self) -> None:
        """The masks of the targets no wrapper holds, as the level the checkpoint is in left them (kept in `state`)."""
        wanted = [k for k in self.kept if k not in self._wrapped()]
        if not wanted:
            return
        from tflottery.core.files import read_npz

        path = self.state / "variable_masks.npz"
        saved = read_npz(path) if path.exists() else {}
        if set(saved) != set(wanted):
            raise ConfigError(f"{self.state} does not hold the masks of {', '.join(sorted(set(wanted) - set(saved)))} "
                              f"at level {self.level}: resume with the state folder of the fit that trained it.")
        wrap.set_masks(self.model, {k: v.astype(bool) for k, v in saved.items()})

    # ------------------------------------------------------------------ every step
    def on_train_batch_begin(self, batch, logs=None):
        done = self.done()
        for level in range(1, self.schedule.levels + 1):
            if done == self.schedule.level_start(level):
                if self.rewind_weights is None:
                    raise ConfigError(f"Rewind has no weights of step {self.rewind_step} to rewind to at level {level}.")
                self._prune_and_rewind(level)

    def on_train_batch_end(self, batch, logs=None):
        for weight, mask in self.pairs:  # pruned weights exactly zero after every step
            weight.assign(weight * tf.cast(mask, weight.dtype))
        done = self.done()
        if done == self.rewind_step and self.rewind_weights is None:
            self.rewind_weights = get_weights(self.model)
            self._save_state(done)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["imp_level"] = self.level
            logs["imp_remaining"] = self.remaining()
            self.logs = {k: float(v) for k, v in logs.items() if isinstance(v, (int, float, np.floating))}
        self._save_state(self.done())

    # ------------------------------------------------------------------ a level's start
    def _prune_and_rewind(self, level: int) -> None:
        """Level `level`'s mask from the trained weights (the plan's counts), every weight back to the rewind
        step under it, and the optimizer as `find` starts a level: moments and counter zero, schedule at k."""
        trained, masks = get_weights(self.model), wrap.get_masks(self.model)
        for path, current in masks.items():
            keep = int(round(self.kept[path][level] * current.size))
            masks[path] = mask_lib.drop_smallest(trained[path], current, int(current.sum()) - keep)
        set_weights(self.model, self.rewind_weights)
        wrap.set_masks(self.model, masks)  # and the pruned weights zero
        if self.reset_optimizer:
            optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
            for v in optimizer.variables:
                v.assign(tf.zeros_like(v))
            self._learning_rate_from_rewind()
        self.level = level
        self.events.append({"step": self.done(), "level": level, "remaining": self.remaining()})
        self._save_state(self.done())

    def _learning_rate_from_rewind(self) -> None:
        rate = getattr(getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer), "_learning_rate", None)
        if isinstance(rate, WarmupPiecewise):
            rate.start_at(self.rewind_step)

    # ------------------------------------------------------------------ state on disk
    def _save_state(self, done: int) -> None:
        if self.state is None or self.rewind_weights is None:
            return
        from tflottery.core.files import write_json, write_npz

        if not self._rewind_saved:  # the rewind weights never change once kept
            write_npz(self.state / "rewind.npz", self.rewind_weights)
            self._rewind_saved = True
        variable_masks = {k: m for k, m in self.masks().items() if k not in self._wrapped()}
        if variable_masks and self.level:  # what no checkpoint holds, before the state that names the level
            write_npz(self.state / "variable_masks.npz", variable_masks)
        variable_kept = {k: list(v) for k, v in self.kept.items() if k not in self._wrapped()}
        write_json(self.state / "state.json", {"done": done, "rewind_step": self.rewind_step, "events": self.events,
                                               "variable_kept": variable_kept})

    def _reattach(self, weights: dict) -> None:
        """A model loaded from a checkpoint has lost its `VariableMask`s (a saved model carries none): put them back
        with their levels' fractions from `state`, so that no target is left dense in silence."""
        if self.state is None or not (self.state / "state.json").exists():
            return
        from tflottery.core.files import read_json

        for path, kept in (read_json(self.state / "state.json").get("variable_kept") or {}).items():
            if path not in weights:
                raise ConfigError(f"{self.state} masks {path}, which this model does not have: give each fit its own "
                                  "state folder.")
            if not isinstance(weights[path].constraint, wrap.VariableMask):
                wrap.mask_by_variable(weights[path]).kept = [float(v) for v in kept]

    def _load_state(self) -> Optional[dict]:
        if self.state is None or not (self.state / "state.json").exists():
            return None
        from tflottery.core.files import read_json, read_npz

        saved = read_json(self.state / "state.json")
        self.rewind_weights = read_npz(self.state / "rewind.npz")
        self._rewind_saved = True
        return saved

    # ------------------------------------------------------------------ what it holds
    def remaining(self) -> float:
        return mask_lib.remaining(self.masks())["total"]

    def _wrapped(self) -> set:
        return {f"{layer.layer.name}/kernel" for layer in self.layers}

    def masks(self) -> dict:
        """{path: bool array} of every masked weight now (wrappers' and `VariableMask`s')."""
        return wrap.get_masks(self.model)

    def training(self) -> dict:
        """The fit's training as a tflottery training config, where the optimizer is one tflottery knows."""
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        name = type(optimizer).__name__.lower()
        rate = getattr(optimizer, "_learning_rate", None)
        lr = rate.lr if isinstance(rate, WarmupPiecewise) else float(keras.backend.get_value(rate)) \
            if rate is not None and not callable(rate) else None
        out = {"steps": f"{self.schedule.level_steps}it"}
        if name in ("adam", "sgd") and lr is not None:
            out.update(optimizer=name, lr=lr)
            if name == "sgd":
                out.update(momentum=float(optimizer.momentum), nesterov=bool(optimizer.nesterov))
        return out

    def record(self) -> dict:
        """What a ticket of the model as it is now holds (`tflottery.export_ticket(rewind, out=...)` writes it):
        the plain architecture, the masks, the rewind weights it trains from (masked), the trained weights,
        the training, and the last epoch's logged numbers."""
        if self.rewind_weights is None:
            raise ConfigError("Rewind has no rewind weights yet: export after fit has run.")
        masks = self.masks()
        plain = wrap.strip(self.model)
        logged = {f"final_{k}": v for k, v in self.logs.items() if not k.startswith("imp_")}
        return {"architecture": plain.to_json(), "name": plain.name, "masks": masks, "final": get_weights(self.model),
                "start": {k: v * masks[k] if k in masks else v for k, v in self.rewind_weights.items()},
                "rewind": str(self.to), "training": self.training(),
                "metrics": {"level": self.level, "replicate": 0, "branch": "ticket",
                            "remaining": mask_lib.remaining(masks)["total"], "rewind_step": self.rewind_step,
                            "history": [], "events": self.events, **logged}}


def prune_imp(model: keras.Model, level_steps: int, levels: int, pruning: "dict | None" = None,
              rewind: str = "0it") -> keras.Model:
    """`model` wrapped by tfmot's `prune_low_magnitude`, each prunable layer with an `IMPSchedule` holding
    the layerwise plan's exact survivor fractions (`pruning`: a PruningConfig dict; default dense 20%,
    conv 10%, the output at half rate) and levels rewound to `rewind` (level 0: `level_steps` steps, each
    later level `level_steps - rewind`). Train it with `Rewind(to=rewind)` for
    `IMPSchedule.total_steps()` steps (`imp_steps(model)`)."""
    from tflottery.config import PruningConfig

    require_tf_keras(model)
    rewind_step = Step.parse(rewind, "prune_imp rewind")
    if rewind_step.epochs:
        raise ConfigError(f"prune_imp rewind={rewind!r}: give the rewind step in iterations (e.g. '500it').")
    config = PruningConfig.from_dict(pruning or {})
    config.validate()
    if config.strategy != "layerwise" or config.structure:
        raise ConfigError(f"prune_imp prunes layer by layer inside your fit (tfmot's schedules are per layer, weight "
                          f"by weight); strategy={config.strategy!r}" + (" with a structure" if config.structure else "")
                          + " needs `tflottery find`, which draws its masks between levels.")
    strategy = bind(config, wrap.prunable_kinds(model, config.prune), wrap.kernel_shapes(model, config.prune),
                    model.name, wrap.uncovered(model, config.prune))
    by_wrapper, by_variable = wrap.wrapped(model, strategy.pruned)
    if not by_wrapper:
        raise ConfigError(f"prune_imp counts a fit's steps in tfmot's wrappers of Dense and Conv kernels, and "
                          f"{model.name} prunes none ({', '.join(strategy.pruned)}): let it prune its output layer, "
                          "or use tflottery.find_ticket, which counts steps itself.")
    plan = strategy.plan(levels)
    kept = {k: [row[k] / strategy.sizes[k] for row in plan] for k in strategy.pruned}
    schedules = {k.split("/")[0]: IMPSchedule(strategy.rates[k], level_steps, levels, kept[k], rewind_step.iterations)
                 for k in strategy.pruned if k not in by_variable}

    def clone(layer):
        if layer.name in schedules:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedules[layer.name])
        return layer

    pruned = keras.models.clone_model(model, clone_function=clone)
    variables = weight_variables(pruned)
    for path in by_variable:  # masked by the optimizer after every update; Rewind draws their levels' masks
        wrap.mask_by_variable(variables[path]).kept = kept[path]
    return pruned


def imp_steps(model: keras.Model) -> int:
    """The steps a fit of a `prune_imp` model takes to train every level."""
    schedules = [layer.pruning_schedule for layer in model.layers if isinstance(layer, PruneLowMagnitude)
                 and isinstance(getattr(layer, "pruning_schedule", None), IMPSchedule)]
    if not schedules:
        raise ConfigError("imp_steps needs a model made by tflottery.prune_imp.")
    return schedules[0].total_steps()


