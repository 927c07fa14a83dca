"""IMP in a user's own Keras 3 `fit` (TensorFlow or JAX backend): the `Keras3IMP` callback, and `TicketMask`.

tfmot does not run on Keras 3, so masks are kept by a constraint instead of a wrapper: each
pruned kernel carries a `TicketMask`, which Keras 3 optimizers apply after every update
(`apply`, and `stateless_apply` inside a jitted JAX step), so pruned weights are exactly zero
after every step under any optimizer (weight decay too), and the model's layers stay the user's.

One fit is laid out as IMP, as `prune_imp` + `Rewind` lay it out in tf_keras: level 0 trains
`level_steps` (T) steps, keeping the weights at the rewind step k; each later level trains
T - k steps. Just before the first step of level L the callback draws the level's mask from the
trained weights with the project's strategy and structure (the plan `tflottery find` draws:
layerwise by default, or `global`, blocks, N:M), sets every weight back to its value at step k
under the mask, and resets the optimizer as `find` does (moments and step counter zero, the
learning rate kept). A mask baked into a compiled step is a constant, so the callback recompiles
the train step at each level's start (once per level).
"""
from __future__ import annotations

import base64

import keras
import numpy as np

from tflottery.core.errors import ConfigError
from tflottery.core.steps import Step
from tflottery.models import keras3 as models3
from tflottery.pruning import masks as mask_lib
from tflottery.pruning.layout import LevelLayout
from tflottery.pruning.targets import default_targets


@keras.saving.register_keras_serializable(package="tflottery")
class TicketMask(keras.constraints.Constraint):
    """Keeps a kernel's pruned weights at exactly zero: applied by the optimizer after every update."""

    def __init__(self, mask):
        self.mask = np.asarray(mask, bool)

    def __call__(self, w):
        return w * keras.ops.cast(self.mask, w.dtype)

    def get_config(self):
        return {"shape": list(self.mask.shape),
                "bits": base64.b64encode(np.packbits(self.mask.ravel()).tobytes()).decode("ascii")}

    @classmethod
    def from_config(cls, config):
        shape = tuple(int(d) for d in config["shape"])
        size = int(np.prod(shape))
        bits = np.unpackbits(np.frombuffer(base64.b64decode(config["bits"]), np.uint8))[:size]
        return cls(bits.astype(bool).reshape(shape))


def set_mask(model, kernel: str, mask: np.ndarray) -> None:
    """Variable `kernel` (its path: "fc1/kernel", "mha/query/kernel") of the Keras 3 `model` under `mask`: its
    pruned weights zero now and kept zero by a `TicketMask` (on the variable, which the optimizer reads; and, for
    a layer's own kernel, on the layer, which saves it)."""
    variable = models3.weight_variables(model)[kernel]
    constraint = TicketMask(mask)
    layer, _, rest = kernel.partition("/")
    if rest == "kernel" and hasattr(model.get_layer(layer), "kernel_constraint"):
        model.get_layer(layer).kernel_constraint = constraint
    variable.constraint = constraint
    variable.assign(np.array(variable) * mask)


def masks_of(model) -> dict:
    """{path: bool array} of the variables of `model` that carry a `TicketMask`."""
    return {k: v.constraint.mask.copy() for k, v in models3.weight_variables(model).items()
            if isinstance(getattr(v, "constraint", None), TicketMask)}


class Keras3IMP(keras.callbacks.Callback):
    """IMP with rewinding to step `rewind` ("0it", "500it") inside a Keras 3 `fit` of `total_steps()` steps.

    `pruning`: a PruningConfig dict (strategy, rates, structure; default layerwise, dense 20%, conv
    10%, the output at half rate). Logs get `imp_level` and `imp_remaining` at every epoch's end;
    `record()` is what `tflottery.export_ticket(callback, out=...)` writes as a ticket.
    """

    def __init__(self, level_steps: int, levels: int, pruning: "dict | None" = None, rewind: str = "0it",
                 reset_optimizer: bool = True):
        super().__init__()
        from tflottery.config import PruningConfig

        to = Step.parse(rewind, "Keras3IMP rewind")
        if to.epochs:
            raise ConfigError(f"Keras3IMP rewind={rewind!r}: give the rewind step in iterations (e.g. '500it').")
        self.layout = LevelLayout(level_steps, levels, to.iterations)
        from tflottery.pruning.resolve import strategy_settings, structure_of

        self.pruning = PruningConfig.from_dict(pruning or {})
        self.pruning.validate()
        strategy_settings(self.pruning)  # bad settings are refused now, not inside the fit
        structure_of(self.pruning)
        if self.pruning.one_shot or self.pruning.strategy not in ("layerwise", "global"):
            raise ConfigError(f"Keras3IMP prunes iteratively inside your fit with the layerwise or global strategy "
                              f"(any structure); strategy={self.pruning.strategy!r}"
                              + (" one-shot" if self.pruning.one_shot else "") + " needs `tflottery find`.")
        self.rewind, self.reset_optimizer = to, bool(reset_optimizer)
        self.done, self.level, self.events, self.logs = 0, 0, [], {}
        self.rewind_weights = None
        self.strategy = self.plan = None

    def total_steps(self) -> int:
        """The steps of the fit that trains every level."""
        return self.layout.total_steps()

    # ------------------------------------------------------------------ set-up and checks
    def on_train_begin(self, logs=None):
        if not models3.is_keras3(self.model):
            raise ConfigError(f"Keras3IMP is for Keras 3 models (`import keras`); this is a {type(self.model).__module__} "
                              "model: in tf_keras use tflottery.prune_imp with the Rewind callback.")
        if int(getattr(self.model, "steps_per_execution", 1) or 1) > 1:
            raise ConfigError("Keras3IMP prunes and rewinds between two steps and must see every step: compile the model "
                              "with steps_per_execution=1.")
        models3.stable_names(self.model)  # a subclassed model's paths: the same in the process that loads its ticket
        kinds = default_targets(self.model.layers)  # the registry and paths of tf_keras
        from tflottery.pruning.resolve import prunable

        prunable(kinds, self.model.name)
        if self.strategy is None:
            self._bind(kinds)
        if self.done == 0 and masks_of(self.model):
            raise ConfigError(f"Model {self.model.name!r} carries tflottery masks already (an earlier Keras3IMP pruned "
                              "it): fit it again with that callback to continue, or start from a fresh model.")
        self._check_learning_rate()
        if self.done == 0 and self.layout.rewind_step == 0:
            self.rewind_weights = models3.get_weights(self.model)

    def _bind(self, kinds: dict) -> None:
        from tflottery.pruning.resolve import bind

        variables = models3.weight_variables(self.model)
        for name in kinds:
            constraint = variables[name].constraint
            if constraint is not None and not isinstance(constraint, TicketMask):
                raise ConfigError(f"Layer {name.split('/')[0]!r} has a kernel constraint ({type(constraint).__name__}); "
                                  "Keras3IMP keeps masks with a constraint of its own: remove that one.")
        self.strategy = bind(self.pruning, kinds, {k: tuple(variables[k].shape) for k in kinds})
        self.plan = self.strategy.plan(self.layout.levels)

    def _check_learning_rate(self) -> None:
        rate = getattr(self.model.optimizer, "_learning_rate", None)
        if self.layout.rewind_step and self.reset_optimizer and callable(rate):
            raise ConfigError(f"Keras3IMP rewinds to step {self.layout.rewind_step} and restarts the optimizer's counter "
                              f"at each level, so the learning-rate schedule {type(rate).__name__} would restart at step 0 "
                              "instead: use a constant learning rate, or rewind to 0it.")

    # ------------------------------------------------------------------ every step
    def on_train_batch_begin(self, batch, logs=None):
        level = self.level + 1
        if level <= self.layout.levels and self.done == self.layout.level_start(level):
            self._sync()
            self._prune_and_rewind(level)

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done >= self.layout.total_steps():  # every level trained: more steps would train past the plan
            self.model.stop_training = True
        if self.rewind_weights is None and self.done == self.layout.rewind_step:
            self._sync()
            self.rewind_weights = models3.get_weights(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["imp_level"] = self.level
            logs["imp_remaining"] = self.remaining()
            self.logs = {k: float(v) for k, v in logs.items() if isinstance(v, (int, float, np.floating))}

    def _sync(self) -> None:
        """On JAX, the fit's state back into the model's variables (the fit re-reads them at its next step)."""
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()

    # ------------------------------------------------------------------ a level's start
    def _prune_and_rewind(self, level: int) -> None:
        trained = models3.get_weights(self.model)
        current = {**mask_lib.ones_like(trained, self.strategy.sizes), **masks_of(self.model)}
        new = self.strategy.prune(trained, current, self.plan[level])
        models3.set_weights(self.model, self.rewind_weights)
        for kernel, mask in new.items():
            if kernel in self.strategy.pruned:
                set_mask(self.model, kernel, mask)
        if self.reset_optimizer:
            optimizer = self.model.optimizer
            for variable in optimizer.variables:
                if variable is not getattr(optimizer, "_learning_rate", None):
                    variable.assign(np.zeros(variable.shape, variable.dtype))
        self.model.make_train_function(force=True)  # the new masks are constants of the compiled step
        self.level = level
        self.events.append({"step": self.done, "level": level, "remaining": self.remaining()})

    # ------------------------------------------------------------------ what it holds
    def masks(self) -> dict:
        """{"<layer>/kernel": bool array} of every prunable kernel now (all ones before level 1)."""
        if self.strategy is None:
            raise ConfigError("Keras3IMP has not seen its model yet: fit first.")
        return {**mask_lib.ones_like(models3.get_weights(self.model), self.strategy.sizes), **masks_of(self.model)}

    def remaining(self) -> float:
        return mask_lib.remaining(self.masks())["total"]

    def _architecture(self) -> str:
        """The model as tf_keras JSON; a subclassed model, which only its code rebuilds, as a description of that
        code (its ticket holds weights and masks only: `load_ticket(path, model=MyModel)` fills it)."""
        import json

        from tflottery.models.built import KIND

        if "layers" in self.model.get_config():
            return models3.translate(self.model, to=2).to_json()
        code = f"{type(self.model).__module__}.{type(self.model).__qualname__}"
        return json.dumps({"class_name": KIND, "config": {"name": self.model.name, "builder": code, "keras": 3}})

    def _input_shape(self) -> "list | None":
        """One example's shape: the Functional model's input, or what a subclassed model was built on."""
        try:
            shape = self.model.input_shape
        except (AttributeError, ValueError):
            shape = next(iter((getattr(self.model, "_build_shapes_dict", None) or {}).values()), None)
        if not isinstance(shape, (list, tuple)) or not shape or not all(isinstance(d, int) for d in shape[1:]):
            return None
        return [int(d) for d in shape[1:]]

    def training(self) -> dict:
        """The fit's training as a tflottery training config, where the optimizer is one tflottery knows."""
        optimizer = self.model.optimizer
        name = type(optimizer).__name__.lower()
        out = {"steps": f"{self.layout.level_steps}it"}
        rate = getattr(optimizer, "_learning_rate", None)
        if name in ("adam", "sgd") and rate is not None and not callable(rate):
            out.update(optimizer=name, lr=float(np.array(rate)))
            if name == "sgd":
                out.update(momentum=float(optimizer.momentum), nesterov=bool(optimizer.nesterov))
        return out

    def record(self) -> dict:
        """What a ticket of the model as it is now holds: its architecture (as tf_keras, which tickets
        store), the masks, the rewind weights under them, the trained weights, the training, the last
        epoch's logged numbers."""
        if self.rewind_weights is None:
            raise ConfigError("Keras3IMP has no rewind weights yet: export after fit has run.")
        self._sync()
        masks = self.masks()
        logged = {f"final_{k}": v for k, v in self.logs.items() if not k.startswith("imp_")}
        return {"architecture": self._architecture(), "name": self.model.name, "masks": masks,
                "inputs": self._input_shape(),
                "final": models3.get_weights(self.model),
                "start": {k: v * masks[k] if k in masks else v for k, v in self.rewind_weights.items()},
                "rewind": str(self.rewind), "training": self.training(),
                "metrics": {"level": self.level, "replicate": 0, "branch": "ticket", "remaining": self.remaining(),
                            "rewind_step": self.layout.rewind_step, "history": [], "events": self.events,
                            "keras": 3, "backend": keras.backend.backend(), **logged}}
