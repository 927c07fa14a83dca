"""What a branch reads: one replicate of a run, its records, weights, masks and data (`ReplicateContext`)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from tflottery.config import DataConfig, RunConfig, TrainingConfig, build
from tflottery.core.errors import ConfigError, RunError
from tflottery.core.names import layer_of
from tflottery.core.seeds import derive_seed
from tflottery.engine.plan import Plan, training_steps
from tflottery.engine.store import TICKET, LevelRecord, ReplicateStore, RunStore
from tflottery.pruning import masks as mask_lib


@dataclass
class RunSetup:
    """Everything about a run that does not change while it trains: resolved, checked, loaded once."""

    config: RunConfig
    store: RunStore
    data: Any  # tflottery.data.Data
    base: Any  # the plain tf_keras model (architecture; its weights are never trained)
    plan: Plan
    branches: list  # Branch instances, the ticket first
    user_model: bool = False
    stochastic: list = field(default_factory=list)  # layers drawing random numbers in training
    targets: dict = field(default_factory=dict)  # (data, training) of other tasks, loaded once


def target_key(data: dict, training: dict) -> str:
    """The key of another task (a transfer's target): its data and training configs as plain data."""
    return json.dumps([data, training], sort_keys=True)


def load_target(targets: dict, data: dict, training: dict, runs: "str | None" = None):
    """(Data, TrainingConfig) of the task (`data`, `training`), loaded once into `targets` (a RunSetup's, or a
    remote process's own); a user's own arrays from the copy a run in the folder `runs` stores."""
    key = target_key(data, training)
    if key not in targets:
        from tflottery import data as data_lib

        train_cfg = build(TrainingConfig, training, "training")
        train_cfg.validate()
        targets[key] = (data_lib.load(build(DataConfig, data, "data"), train_cfg.batch_size, runs), train_cfg)
    return targets[key]


class ReplicateContext:
    """One replicate of a run as its branches see it."""

    def __init__(self, setup: RunSetup, index: int, trainer, progress=None):
        self.setup, self.replicate_index, self.trainer, self.progress = setup, index, trainer, progress
        self.config, self.plan, self.data = setup.config, setup.plan, setup.data
        self.strategy, self.end_step = setup.plan.strategy, setup.plan.steps
        self.store: ReplicateStore = setup.store.replicate(index)
        self._init: Optional[dict] = None
        self._masks: dict = {}

    # ------------------------------------------------------------------ weights
    @property
    def init(self) -> dict:
        """The replicate's initial weights: as recorded once level 0 is done, else drawn from its seed."""
        if self._init is None:
            if self.store.is_done(0):
                self._init = self.store.load_level(0).start
            else:
                from tflottery import models

                seed = self.seed(None, None, "init")
                s = self.setup
                self._init = models.fresh_weights(s.base, seed) if s.user_model else models.get_weights(
                    models.build(s.config.model.name, s.data.input_shape, s.data.num_classes, seed))
        return self._init

    def seed(self, level: "int | None", key: "str | None", purpose: str) -> int:
        """The seed of one random choice of this replicate: from the run's seed alone, whatever trained before."""
        return derive_seed(self.plan.seed, self.replicate_index, level, key, purpose)

    def all_ones(self) -> dict:
        return mask_lib.ones_like(self.init, self.strategy.sizes)

    @property
    def rewind_step(self) -> int:
        """The run's rewind step; with rewind=auto, the step this replicate's probe chose."""
        if self.plan.rewind_step is not None:
            return self.plan.rewind_step
        choice = self.store.rewind_choice()
        if choice is None:
            raise RunError(f"{self.store.path}: rewind=auto has not chosen a step yet (the probe runs after "
                           "level 0): run `tflottery find` on this run to finish it.")
        return int(choice["step"])

    def rewind_known(self) -> bool:
        return self.plan.rewind_step is not None or self.store.rewind_choice() is not None

    def dense_captures(self) -> set:
        """Steps of the dense run to keep: the rewind step (or auto's grid) and the plan's captures."""
        steps = set(self.plan.captures)
        steps |= set(self.plan.grid) if self.plan.rewind_step is None else {self.plan.rewind_step}
        return {s for s in steps if 0 < s < self.end_step}

    def dense_weights(self, step: int) -> dict:
        """The dense run's weights at `step` (0: the initialisation)."""
        if step == 0:
            return self.init
        if step not in self.store.captured_steps():
            raise ConfigError(
                f"Step {step} of {self.store.path}'s dense training was not kept (kept: "
                f"{[0, *self.store.captured_steps()]}). Keep it with `tflottery find ... --capture='[\"{step}it\"]'` "
                f"before level 0 trains, or replay the dense run once to keep it: `tflottery instability ... "
                f"--recapture` (the same weights: training is deterministic).")
        return self.store.load_capture(step)

    def rewind_weights(self) -> dict:
        return self.dense_weights(self.rewind_step)

    def ticket_weights(self, level: int) -> dict:
        """The weights a pruned level's ticket starts from: the rewind step's (or, with lr_rewind, the
        trained weights of the level it was pruned from)."""
        return self.record(self.pruned_from(level)).final if self.plan.lr_rewind else self.rewind_weights()

    def record(self, level: int, branch: str = TICKET) -> LevelRecord:
        return self.store.load_level(level, branch)

    def pruned_from(self, level: int) -> int:
        """The level whose trained weights level `level`'s mask is drawn from."""
        return 0 if self.strategy.from_dense else self.plan.levels[self.plan.levels.index(level) - 1]

    def level_masks(self, level: int) -> dict:
        """The ticket's mask at `level` (level 0: all ones): pruned from the trained weights of the level
        it follows, to the plan's counts. Known before the ticket of `level` trains, so its baselines
        can train beside it."""
        if level not in self._masks:
            if level == 0:
                self._masks[level] = self.all_ones()
            elif self.store.is_done(level):
                self._masks[level] = self.record(level).masks
            else:
                source = self.record(self.pruned_from(level))
                self.strategy.check_source(source.metrics, f"replicate {self.replicate_index}, level "
                                                           f"{self.pruned_from(level)}")
                self._masks[level] = self.strategy.prune(source.final, source.masks, self.plan.rows[level])
        return self._masks[level]

    def fresh_weights(self, seed: int, classes: Optional[int] = None) -> dict:
        from tflottery import models

        base = self.setup.base if classes is None else models.with_head(self.setup.base, classes, seed)
        return models.fresh_weights(base, seed)

    def fresh_head(self, seed: int, classes: int) -> dict:
        from tflottery import models

        head = layer_of(self.output_kernel())
        return {k: v for k, v in models.get_weights(models.with_head(self.setup.base, classes, seed)).items()
                if layer_of(k) == head}

    def output_kernel(self) -> str:
        return list(self.strategy.kinds)[-1]

    # ------------------------------------------------------------------ other tasks (transfer)
    def target(self, data: dict, training: dict):
        """(Data, TrainingConfig) of a branch's own task, loaded once."""
        return load_target(self.setup.targets, data, training, self.config.runs_dir)

    def steps_of(self, training: TrainingConfig, data) -> int:
        return training_steps(training, data.steps_per_epoch, self.config.force).steps
