"""Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020).

Level 0 trains the dense network. Level L >= 1 prunes the survivors of level L-1 by
magnitude of their *trained* weights, rewinds the survivors to the rewind point (the
initialisation, or step k of the dense run), resets the optimizer and trains again. The
baselines train on the same levels: `reinit` (same mask, fresh initialisation) and
`random_prune` (random mask with the same per-layer sparsity, rewind weights).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery import data as data_lib
from tflottery import models
from tflottery.config import ConfigError, RunConfig, Step, levels_for_target
from tflottery.keras_compat import keras, require_tf_keras
from tflottery.pruning import masks as mask_lib
from tflottery.pruning import wrap as wrap_lib
from tflottery.runs import MAIN, atomic_write, LevelRecord, RunDir, read_npz, write_csv, write_json, write_npz
from tflottery.training import (compile_model, make_strategy, precision_policy, progress_line, reset_optimizer,
                                 train_level, worker_index)

log = logging.getLogger("tflottery")


@dataclass
class Plan:
    """What IMP will do, known before any training."""

    rates: dict
    levels: int
    steps: int
    rewind_step: int
    rows: list  # planned surviving weights per level (masks.plan)

    def table(self) -> str:
        names = [k for k in self.rows[0] if k not in ("total", "remaining")]
        head = f"{'level':>5} " + " ".join(f"{n.split('/')[0]:>10}" for n in names) + f" {'total':>10} {'remaining':>9}"
        lines = [head]
        for level, row in enumerate(self.rows):
            cells = " ".join(f"{row[n]:>10}" if row[n] is not None else f"{'(global)':>10}" for n in names)
            lines.append(f"{level:>5} {cells} {row['total']:>10} {100 * row['remaining']:>8.1f}%")
        return "\n".join(lines)


@dataclass
class Run:
    config: RunConfig
    dir: RunDir
    data: "data_lib.Data"
    model: keras.Model  # the wrapped model, holding the last level trained in this call
    plan: Plan
    trained: list = field(default_factory=list)  # (level, branch) trained in this call

    @property
    def path(self) -> Path:
        return self.dir.path

    def summary(self) -> list[dict]:
        return self.dir.summary()


def _effective_seed(config: RunConfig) -> int:
    return config.seed + 10007 * config.replicate


def make_plan(config: RunConfig, model: keras.Model, steps_per_epoch: int) -> Plan:
    """Validate everything that can fail before training, and plan the levels."""
    kinds = wrap_lib.prunable_kinds(model)
    if not kinds:
        raise ConfigError(f"Model {model.name!r} has no Dense or Conv layer to prune.")
    rates = mask_lib.layer_rates(kinds, config.pruning)
    p = config.pruning
    sizes = {k: int(np.prod(v.shape)) for k, v in wrap_lib.weight_variables(model).items() if k in kinds}
    levels = p.levels if p.target_remaining is None else levels_for_target(rates, sizes, p.target_remaining)
    if p.one_shot:
        rates = {k: 1 - (1 - r) ** levels for k, r in rates.items()}
        levels = 1
    steps = Step.parse(config.training.steps).to_steps(steps_per_epoch)
    if steps < 1:
        raise ConfigError(f"training.steps={config.training.steps} is zero steps: train for at least 1it.")
    rewind_step = Step.parse(p.rewind).to_steps(steps_per_epoch)
    if rewind_step > steps:
        raise ConfigError(f"pruning.rewind={p.rewind} ({rewind_step} steps) lies beyond the training length "
                          f"training.steps={config.training.steps} ({steps} steps): rewind to an earlier step.")
    return Plan(rates, levels, steps, rewind_step, mask_lib.plan(sizes, rates, levels, p))


def fresh_weights(model: keras.Model, seed: int) -> dict:
    """New initial weights for `model`'s architecture: its initialisers, re-seeded (the reinit baseline)."""
    def clone(layer):
        cfg = layer.get_config()
        for key, value in cfg.items():
            if key.endswith("_initializer") and isinstance(value, dict) and "seed" in value.get("config", {}):
                value["config"]["seed"] = (value["config"]["seed"] or 0) + 7919 * (seed + 1)
        return layer.__class__.from_config(cfg)

    keras.utils.set_random_seed(seed)
    return wrap_lib.get_weights(keras.models.clone_model(model, clone_function=clone))


def find_ticket(config: "RunConfig | dict | None" = None, *, model: Optional[keras.Model] = None,
                data: "Optional[data_lib.Data]" = None, dry_run: bool = False, callbacks: tuple = ()) -> "Run | Plan":
    """Run IMP as configured, resuming a run directory that already holds finished levels.

    `model` may be any Sequential/Functional tf_keras model (default: the zoo's `config.model.name`).
    With `dry_run`, return the `Plan` (weights remaining per layer and level) without training.
    """
    config = RunConfig.from_dict(config if isinstance(config, dict) else (config or RunConfig()).to_dict())
    config.validate()
    strategy = make_strategy(config.training)  # multi-worker collectives must start before other TF ops
    seed = _effective_seed(config)
    keras.utils.set_random_seed(seed)
    if model is not None:
        require_tf_keras(model)
        config.model.name = model.name
        config.model.architecture = hashlib.sha256(model.to_json().encode()).hexdigest()[:12]
    if data is None:
        data = data_lib.load(config.data, config.training.batch_size, seed)
    with precision_policy(config.training.precision), strategy.scope():
        base = model or models.build(config.model.name, data.input_shape, data.num_classes, seed)
        plan = make_plan(config, base, data.steps_per_epoch)
        if dry_run:
            return plan
        return _run_levels(config, data, base, plan, seed, strategy, callbacks)


def _run_levels(config, data, base, plan, seed, strategy, callbacks) -> Run:
    runs_dir = Path(config.runs_dir)
    if worker_index() != 0 and strategy.num_replicas_in_sync > 1:  # only the chief writes the shared run
        runs_dir = runs_dir / f".worker_{worker_index()}"
    run = RunDir(runs_dir / config.run_name())
    write_json(run.path / "config.json", config.to_dict())
    write_json(run.path / "data.json", data.describe())
    write_json(run.path / "plan.json", {"rates": plan.rates, "levels": plan.levels, "steps": plan.steps,
                                        "rewind_step": plan.rewind_step, "rows": plan.rows})
    if not (run.path / "model.json").exists():
        atomic_write(run.path / "model.json", base.to_json().encode())
    wrapped = compile_model(wrap_lib.wrap(base), config.training, data.steps_per_epoch)
    # On resume the recorded initialisation is the truth (a user's model may have unseeded initialisers).
    init = run.load_level(0).start if run.is_done(0) else wrap_lib.get_weights(wrapped)
    runner = _LevelRunner(config, run, data, wrapped, plan, init, base, seed, callbacks)
    for level in range(plan.levels + 1):
        runner.level(level)
    write_csv(run.path / "results.csv", run.summary())
    return Run(config, run, data, wrapped, plan, runner.trained)


class _LevelRunner:
    def __init__(self, config, run, data, model, plan, init, base, seed, callbacks):
        self.config, self.run, self.data, self.model, self.plan = config, run, data, model, plan
        self.init, self.base, self.seed, self.callbacks = init, base, seed, callbacks
        self.trained, self.times = [], []
        self.branches = config.pruning.branches
        self.jobs_total = plan.levels + 1 + plan.levels * len(self.branches)

    def rewind_point(self) -> dict:
        if self.plan.rewind_step == 0:
            return self.init
        return read_npz(self.run.path / "rewind_point.npz")

    def level(self, level: int) -> None:
        if level == 0:
            ones = {k: np.ones(v.shape, bool) for k, v in wrap_lib.mask_variables(self.model).items()}
            self.train(0, MAIN, ones, self.init, capture_at=self.plan.rewind_step or None)
            return
        previous = self.run.load_level(level - 1)
        masks = mask_lib.prune(previous.final, previous.masks, self.plan.rates, self.config.pruning)
        start = previous.final if self.config.pruning.lr_rewind else self.rewind_point()
        self.train(level, MAIN, masks, start)
        masks = self.run.load_level(level).masks  # the finished level's own record, even when resumed
        if "reinit" in self.branches:
            self.train(level, "reinit", masks, lambda: fresh_weights(self.base, self.seed + level))
        if "random_prune" in self.branches:
            self.train(level, "random_prune", mask_lib.random_like(masks, self.seed * 1000 + level), self.rewind_point())

    def train(self, level, branch, masks, start, capture_at=None) -> None:
        if self.run.is_done(level, branch):
            return
        start = start() if callable(start) else start
        wrap_lib.set_weights(self.model, start)
        wrap_lib.set_masks(self.model, masks)
        reset_optimizer(self.model)
        started = wrap_lib.get_weights(self.model)
        tb = str(self.run.level_dir(level, branch) / "tensorboard") if self.config.training.tensorboard else None
        seed = self.seed * 1000 + 10 * level + [MAIN, "reinit", "random_prune"].index(branch)
        result = train_level(self.model, self.data, self.config.training, self.plan.steps, seed=seed, capture_at=capture_at,
                             get_weights=wrap_lib.get_weights, log_dir=tb, callbacks=self.callbacks)
        if capture_at:
            write_json(self.run.path / "rewind_point.json", {"step": capture_at})
            write_npz(self.run.path / "rewind_point.npz", result.captured)
        remaining = mask_lib.remaining(masks)
        metrics = {"level": level, "branch": branch, "remaining": remaining["total"],
                   "layers_remaining": {k: v for k, v in remaining.items() if k != "total"},
                   "steps": self.plan.steps, "rewind_step": self.plan.rewind_step,
                   "data_source": self.data.info["source"], "history": result.history, **result.summary()}
        self.run.save_level(level, branch, LevelRecord(masks, started, wrap_lib.get_weights(self.model), metrics))
        self.trained.append((level, branch))
        self.times.append(result.wall_time_s)
        if self.config.training.verbose:
            self.progress(metrics)

    def progress(self, m: dict) -> None:
        done = sum(self.run.is_done(lv, b) for lv in range(self.plan.levels + 1)
                   for b in [MAIN] + (self.branches if lv else []))
        eta = np.mean(self.times) * (self.jobs_total - done)
        print(progress_line(m, self.plan.levels, eta), flush=True)
