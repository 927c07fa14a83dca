"""Units: one training of a run (a replicate's level of one branch, a copy, a probe, a transfer), and their groups.

A unit is ready once its inputs exist (`ready_units`, over `tflottery.engine.graph`): level L
of replicate r needs the ticket of r's previous trained level and its rewind step (and, for
branches that read it, the ticket of level L itself); all replicates' units of a level are
independent. Units that share the
architecture, data, training and step range can train as one population (`group_key`; see
`tflottery.engine.scheduler`), each exactly as it would alone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tflottery.config import hashed_fields
from tflottery.core.errors import RunError
from tflottery.engine.graph import PROBE, READY, unit_name
from tflottery.engine.progress import progress_line
from tflottery.engine.store import LevelRecord
from tflottery.pruning import masks as mask_lib


@dataclass
class Unit:
    ctx: Any  # the ReplicateContext it belongs to
    level: int
    branch: Any
    start: Any  # BranchStart
    data: Any
    training: Any  # TrainingConfig
    steps: Any  # TrainingSteps
    alone: bool = False  # it failed before: it trains in a group of its own

    @property
    def replicate(self) -> int:
        return self.ctx.replicate_index

    @property
    def key(self) -> tuple:
        return (self.replicate, self.level, self.branch.key())

    @property
    def name(self) -> str:
        """Its lock's name (`r0-level_3-ticket`)."""
        return unit_name(self.replicate, self.level, self.branch.key())

    @property
    def label(self) -> str:
        return f"r{self.replicate} level {self.level} {self.branch.key()}"

    def seed(self, purpose: str) -> int:
        return self.branch.seed(self.ctx, self.level, purpose)

    def weights(self) -> dict:
        w = self.start.weights
        return w() if callable(w) else w

    def log_dir(self) -> "str | None":
        """Where TensorBoard logs of this unit go (--tensorboard), else None."""
        return str(self.ctx.store.level_dir(self.level, self.branch.key()) / "tensorboard") \
            if self.training.tensorboard else None

    def group_key(self) -> tuple:
        """Units with equal keys can train as one program; a unit that must train alone gets its own."""
        alone = (self.alone or self.start.watch is not None or self.start.rewire is not None
                 or bool(self.ctx.setup.stochastic))
        return (self.start.head_classes, id(self.data), json.dumps(hashed_fields(self.training), sort_keys=True),
                self.start.start_step, self.start.end_step, self.key if alone else None)


def check_finite(unit: Unit, history: list) -> None:
    """A unit whose loss went NaN or infinite is an error naming it, and nothing of it is stored."""
    import math

    for row in history:
        bad = [k for k, v in row.items() if k.endswith("loss") and not math.isfinite(v)]
        if bad:
            raise RunError(f"{unit.label} trained to a non-finite {bad[0]} at step {row['step']}: its weights are "
                           "useless. Lower the learning rate (--lr), or check the model and data; nothing of this "
                           "unit was stored, so the run resumes here once fixed.")


def make_unit(ctx, level: int, branch) -> Unit:
    """The unit of `branch` at `level` of `ctx`'s replicate, its start drawn."""
    from tflottery.engine.plan import training_steps

    start = branch.start(ctx, level)
    data, training = start.data or ctx.data, start.training or ctx.config.training
    steps = ctx.plan.training if start.training is None else training_steps(training, data.steps_per_epoch,
                                                                             ctx.config.force)
    return Unit(ctx, level, branch, start, data, training, steps)


def unit_states(contexts: dict, plan, failed=frozenset()) -> list[tuple]:
    """(ctx, UnitState) of every unit of `plan` (a UnitPlan), read from the run once (`contexts`: replicate -> its
    ReplicateContext; `failed`: names of the units marked failed)."""
    return [(ctx, u) for r, ctx in contexts.items() for u in plan.units(ctx.store, r, failed)]


def ready_units(states: list) -> list[tuple]:
    """(ctx, level, branch) of every unit of `states` (`unit_states`) whose inputs exist and that is not marked
    failed, by level and replicate; `make_unit` draws a unit's start once a process has claimed it."""
    out = [(u.level, ctx.replicate_index, ctx, u.branch_kind) for ctx, u in states
           if u.state == READY and u.branch != PROBE]
    out.sort(key=lambda item: (item[0], item[1]))
    return [(ctx, level, branch) for level, _, ctx, branch in out]


def save_unit(unit: Unit, own, fence=None) -> tuple:
    """Store a trained unit: captures, then its level record (its manifest last, the commit); print its line.
    `fence` (the holder's lease check) is called before the first write and before the commit."""
    ctx, branch, start, result = unit.ctx, unit.branch, unit.start, own.result
    check_finite(unit, result.history)
    if fence is not None:
        fence()
    for step, weights in result.captured.items():
        ctx.store.save_capture(step, weights)
    remaining = mask_lib.remaining(own.masks)
    metrics = {"level": unit.level, "branch": branch.key(), "kind": branch.kind, "replicate": unit.replicate,
               "remaining": remaining["total"], "layers_remaining": {k: v for k, v in remaining.items() if k != "total"},
               "start_step": start.start_step, "end_step": start.end_step,
               "rewind_step": ctx.rewind_step if ctx.rewind_known() else None,
               "data_source": unit.data.info["source"], "history": result.history, **result.summary()}
    metrics.update(branch.metrics(ctx, unit, result))
    own_model = own_data = None
    if start.head_classes is not None:
        from tflottery.models import with_head

        own_model = with_head(ctx.setup.base, start.head_classes, 0).to_json()
    if start.data is not None:
        own_data = unit.data.describe()
        own_model = own_model or ctx.setup.base.to_json()
    params = branch.param_values()
    meta = {"kind": branch.kind, "params": params} if params else None
    ctx.store.save_level(unit.level, branch.key(), LevelRecord(own.masks, own.started, own.final, metrics), meta,
                         own_model, own_data, fence)
    if ctx.progress is not None:
        eta = ctx.progress.finished(start.end_step - start.start_step, result.wall_time_s)
        if unit.training.verbose:
            print(progress_line(metrics, ctx.plan.levels[-1], eta, unit.replicate,
                                ctx.plan.of_all(metrics["remaining"])), flush=True)
    return unit.key
