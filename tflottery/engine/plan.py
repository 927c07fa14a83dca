"""The plan of a run, resolved once: every step string in iterations, the pruning plan, the identity, the name.

`make_plan` needs only the prunable kernels' kinds and shapes and the steps per epoch (no
TensorFlow): it binds the strategy under its structure, plans the surviving weights of every
level, resolves the training length T, the rewind step k (or rewind=auto's grid), the captures
and every training step string, and checks them against each other. `identity` is what fixes
the trajectory of a run's tickets; `run_name` hashes it into the directory name.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Optional

from tflottery.config import RunConfig, TrainingConfig, hashed_fields
from tflottery.core.errors import ConfigError
from tflottery.core.names import target_label
from tflottery.core.stats import STABLE_PP
from tflottery.core.steps import Step
from tflottery.pruning import masks as mask_lib
from tflottery.pruning import strategies as strategy_lib
from tflottery.engine.trainer.registry import trainer_kind
from tflottery.pruning.resolve import bind

ENGINE = 2  # bump when a change alters what a run trains: old runs then keep their own names
AUTO_GRID = ("0it", "100it", "500it", "1ep", "2ep")  # rewind=auto's default probe, earliest first
PROBE_ALPHAS = 11
PROBE_COPIES = 4  # rewind=auto: 6 pairs, a jackknife interval over 4 copies (0.2: one pair, no interval)
MAX_STEPS = 10 ** 9  # never: a level this long cannot finish
SAFE_STEPS = 10 ** 7  # more only with --force (the paper's LeNet trains 50K, ResNet-20 63K)


@dataclass(frozen=True)
class TrainingSteps:
    """A TrainingConfig's step strings in iterations (at one steps-per-epoch)."""

    steps: int
    eval_every: int
    warmup: int
    milestones: tuple
    steps_per_epoch: int


def training_steps(training: TrainingConfig, steps_per_epoch: int, force: bool = False) -> TrainingSteps:
    """Resolve every step string of `training` once; too long a training is refused here, before any work
    (past SAFE_STEPS only with `force`)."""
    def it(text, name):
        return Step.parse(text, f"training.{name}").to_steps(steps_per_epoch)

    steps = it(training.steps, "steps")
    if steps < 1:
        raise ConfigError(f"training.steps={training.steps} is zero steps: train for at least 1it.")
    if steps > MAX_STEPS or (steps > SAFE_STEPS and not force):
        raise ConfigError(f"training.steps={training.steps} is {steps:,} steps a level, more than "
                          f"{SAFE_STEPS if steps <= MAX_STEPS else MAX_STEPS:,}: give a length that can finish (the "
                          "paper's LeNet uses 50000it)" + (", or --force=true if you mean it." if steps <= MAX_STEPS
                                                          else "."))
    resolved = TrainingSteps(steps, min(max(1, it(training.eval_every, "eval_every")), steps), it(training.warmup, "warmup"),
                             tuple(sorted(it(m, "milestones") for m in training.milestones)), steps_per_epoch)
    late = [(f"training.warmup={training.warmup}", resolved.warmup)] if resolved.warmup >= steps else []
    late += [(f"training.milestones has {m}", it(m, "milestones")) for m in training.milestones
             if it(m, "milestones") >= steps]
    if late:
        what, at = late[0]
        raise ConfigError(f"{what} (step {at}) is not before the end of training (training.steps={training.steps}, "
                          f"{steps} steps): it would never take effect; give a step before {steps}.")
    check_memory(resolved, training.batch_size)
    return resolved


def check_memory(steps: TrainingSteps, batch_size: int, units: int = 1) -> None:
    """The batch order of one segment (eval_every steps) must fit in a quarter of this machine's memory."""
    needed = steps.eval_every * batch_size * 4 * units
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if needed > memory // 4:
        raise ConfigError(f"Evaluating every {steps.eval_every:,} steps of batch {batch_size} holds {needed / 2**30:.1f} "
                          f"GiB of batch indices per segment, more than this machine can spare ({memory / 2**30:.0f} "
                          "GiB): evaluate more often (--eval_every=1ep) or train for fewer steps.")


def training_identity(training: TrainingConfig, steps: TrainingSteps) -> dict:
    """The training that changes the math, lengths in iterations (2ep and 1832it are the same run)."""
    out = {"optimizer": training.optimizer, "lr": training.lr, "batch_size": training.batch_size,
           "steps": steps.steps, "weight_decay": training.weight_decay, "precision": training.precision or "float32"}
    if training.optimizer == "sgd":
        out.update(momentum=training.momentum, nesterov=training.nesterov)
    if steps.warmup:
        out["warmup"] = steps.warmup
    if steps.milestones:
        out.update(milestones=list(steps.milestones), gamma=training.gamma)
    out.update(trainer_kind(training).identity(training))  # tf_keras runs keep their names
    return out


@dataclass
class Plan:
    """What a run will do, known before any training: surviving weights per layer and level, steps."""

    strategy: strategy_lib.PruningStrategy
    rows: list  # plan rows for levels 0..levels
    levels: list  # the levels that train (all of them; 0 and the last for one-shot)
    steps: int  # T: the training length of a level
    rewind_step: Optional[int]  # k; None for rewind=auto (each replicate's probe chooses from `grid`)
    steps_per_epoch: int
    training: TrainingSteps
    grid: tuple = ()  # rewind=auto: the steps its probe tries, in order
    captures: tuple = field(default_factory=tuple)  # plan.capture, in iterations
    replicates: int = 1
    baseline_levels: Optional[list] = None  # the pruned levels the baselines train at (None: every one)
    seed: int = 0  # the run's seed: every random choice derives from it (`ReplicateContext.seed`)
    lr_rewind: bool = False  # pruned levels keep the trained weights and rewind only the learning rate
    dense_weights: int = 0  # trainable weights outside every target (biases, norms, layers left dense)

    @property
    def remaining(self) -> list[float]:
        full = sum(self.strategy.sizes.values())
        return [strategy_lib.total(row) / full for row in self.rows]

    def of_all(self, remaining: float) -> float:
        """A fraction `remaining` of the prunable weights as a fraction of every trainable weight."""
        return mask_lib.of_all(remaining, sum(self.strategy.sizes.values()), self.dense_weights)

    @property
    def pruned_layers(self) -> list[str]:
        """The targets the plan masks (variable paths), in the model's order."""
        return list(self.strategy.kinds)

    def iterations(self, text: "str | int") -> int:
        """A step string of this run ("2ep", "500it") in iterations."""
        return Step.parse(text).to_steps(self.steps_per_epoch)

    def table(self) -> str:
        return strategy_lib.describe(self.strategy, self.rows, self.levels)

    def to_dict(self) -> dict:
        return {"strategy": self.strategy.run_identity(), "levels": self.levels, "steps": self.steps,
                "rewind_step": self.rewind_step, "rewind_grid": list(self.grid),
                "steps_per_epoch": self.steps_per_epoch, "rows": self.rows, "remaining": self.remaining,
                "dense_weights": self.dense_weights}


def make_plan(config: RunConfig, kinds: dict, shapes: dict, steps_per_epoch: int,
              uncovered: Optional[dict] = None, dense_weights: int = 0, excluded: Optional[dict] = None,
              graph: Optional[dict] = None) -> Plan:
    """Validate everything that depends on the model and data, and plan the levels (`uncovered`: the model's
    layers with weights no rule prunes, each to be left dense by name; `dense_weights`: the trainable weights
    outside the targets; `excluded`: {path: weights} a "!pattern" of pruning.prune took out, said as left dense;
    `graph`: the model's channel graph, for a structure that follows it)."""
    strategy = bind(config.pruning, kinds, shapes, config.model.name, uncovered, graph)
    strategy.left_dense = {**strategy.left_dense, **{path: f"{n:,} weights, --prune" for path, n in
                                                     (excluded or {}).items()}}
    levels = config.plan.fixed_levels
    if levels is None:
        levels = strategy.levels_for(config.plan.target_remaining)
    steps = training_steps(config.training, steps_per_epoch, config.force)
    auto = config.pruning.rewind == "auto"
    points = (config.pruning.rewind_grid or list(AUTO_GRID)) if auto else [config.pruning.rewind]
    for point in points:
        step = Step.parse(point).to_steps(steps_per_epoch)
        if step >= steps.steps and not (auto and not config.pruning.rewind_grid):
            name = "pruning.rewind_grid" if auto else "pruning.rewind"
            raise ConfigError(f"{name}: {point} (step {step}) is not before the end of training "
                              f"(training.steps={config.training.steps}, {steps.steps} steps): pruned levels train "
                              "from the rewind step to the end, so rewind to an earlier step.")
    resolved = sorted({Step.parse(p).to_steps(steps_per_epoch) for p in points})
    grid = tuple(s for s in resolved if s < steps.steps) if auto else ()
    strategy.check_plan(config.plan.target_remaining, steps.steps, steps_per_epoch)
    trained = [0, levels] if strategy.from_dense and levels else list(range(levels + 1))
    captures = tuple(sorted({Step.parse(c).to_steps(steps_per_epoch) for c in config.plan.capture}))
    late = [c for c in config.plan.capture if Step.parse(c).to_steps(steps_per_epoch) >= steps.steps]
    if late:
        raise ConfigError(f"plan.capture has {late[0]}, not before the end of the dense run (training.steps="
                          f"{config.training.steps}, {steps.steps} steps): capture a step the dense run passes.")
    rows = strategy.plan(levels)
    beyond = sorted(set(config.plan.baseline_levels or ()) - set(range(1, len(rows))))
    if beyond:
        raise ConfigError(f"plan.baseline_levels has {beyond}, past the plan's last level ({len(rows) - 1}): list "
                          f"pruned levels from 1 to {len(rows) - 1}, or raise --levels.")
    for level, row in enumerate(rows):
        empty = [target_label(k) for k in strategy.pruned if row.get(k) == 0]
        empty += ["every pruned layer"] if row.get(strategy_lib.GLOBAL) == 0 else []
        if empty:
            raise ConfigError(f"Level {level} of the plan leaves {', '.join(empty)} with no weights (each level keeps "
                              "1 - rate of a layer's survivors): lower the rate or the levels; a layer without "
                              "weights cuts the network.")
    return Plan(strategy, rows, trained, steps.steps, None if auto else resolved[0],
                steps_per_epoch, steps, grid, captures, config.plan.replicates, config.plan.baseline_levels,
                config.seed, config.pruning.lr_rewind, dense_weights=dense_weights)


def identity(config: RunConfig, plan: Plan, data_info: dict) -> dict:
    """What defines the trajectory of a run's tickets, resolved (2ep and 1832it hash alike)."""
    source = data_info["source"]
    kind = "sample" if source.startswith("sample") else "synthetic" if source.startswith("synthetic") else \
        source if source.startswith("arrays:") else "full"  # a user's own arrays: their digest
    d = config.data
    pruning = {**plan.strategy.run_identity(), "one_shot": plan.strategy.from_dense}
    if plan.rewind_step is not None:
        pruning["rewind_step"] = plan.rewind_step
    else:
        pruning.update(rewind="auto", grid=list(plan.grid), threshold=STABLE_PP, probe_alphas=PROBE_ALPHAS,
                       probe_copies=PROBE_COPIES, decided_by="interval")
    pruning["lr_rewind"] = config.pruning.lr_rewind
    if plan.strategy.name == "early_bird":  # it stops the dense level at a draw that depends on the target
        pruning["target_level"] = plan.levels[-1]
    return {
        "engine": ENGINE,
        "data": {"dataset": d.dataset, "labels": sorted(d.labels) if d.labels else None,
                 "remap_labels": d.remap_labels if d.labels else None, "fraction": d.fraction,
                 "fraction_part": d.fraction_part if d.fraction < 1 else None,
                 "validation": data_info["validation"], "source": kind},
        "model": hashed_fields(config.model),
        "pruning": pruning,
        "training": training_identity(config.training, plan.training),
        "seed": config.seed,
    }


def run_name(config: RunConfig, ident: dict) -> str:
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    labels = "" if not config.data.labels else "-l" + "".join(map(str, sorted(config.data.labels)))
    return f"{config.model.name}-{config.data.dataset}{labels}-{digest}"
