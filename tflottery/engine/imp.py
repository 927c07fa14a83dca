"""The level loop of iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020).

Level 0 trains the dense network for T steps, keeping its weights at the rewind step k. Level
L >= 1 prunes the ticket of level L-1 by the magnitude of its *trained* weights to the plan's
counts, rewinds the survivors to step k, and trains them from step k to T with fresh optimizer
moments and the learning-rate schedule at step k (open_lth's protocol). Each branch of a level
(the ticket, its baselines) trains through the same hooks, in the same run directory, resuming
where a previous call stopped.

The loop trains waves of ready units: every replicate's units whose inputs exist, grouped by
the scheduler into population programs of up to `population` units. Seeds never depend on the
order or the grouping, so any grouping writes the same bytes.
"""
from __future__ import annotations

from tflottery.core.names import layer_of
from tflottery.engine import scheduler
from tflottery.engine.context import ReplicateContext, RunSetup
from tflottery.engine.progress import Progress
from tflottery.engine.units import ready_units, save_unit


def train_run(setup: RunSetup, trainer, population: int, progress: Progress) -> list[tuple]:
    """Train every unfinished unit of the run's plan; the (replicate, level, branch) keys trained."""
    contexts = [ReplicateContext(setup, r, trainer, progress) for r in range(setup.config.plan.replicates)]
    trained: list = []
    while True:
        for ctx in contexts:
            if setup.plan.rewind_step is None and ctx.store.is_done(0) and not ctx.rewind_known():
                from tflottery.engine.stability import probe_rewind

                probe_rewind(ctx)
        ready = ready_units(contexts, setup.branches)
        if not ready:
            return trained
        grouped = []
        for unit in ready:
            own = unit.branch.train(unit.ctx, unit)
            if own is None:
                grouped.append(unit)
            else:
                trained.append(save_unit(unit, own))
        for group in scheduler.groups(grouped, population):
            for unit, result in zip(group, trainer.train(group)):
                trained.append(save_unit(unit, result))


def pending_steps(setup: RunSetup) -> list[tuple]:
    """(replicate, level, branch key, steps) of every unit the plan has yet to train."""
    out = []
    for r in range(setup.config.plan.replicates):
        store = setup.store.replicate(r)
        for level in setup.plan.levels:
            for branch in setup.branches:
                if branch.applies(level) and not store.is_done(level, branch.key()):
                    start = 0 if level == 0 else setup.plan.rewind_step or 0
                    out.append((r, level, branch.key(), setup.plan.steps - start))
    return out


def banner(setup: RunSetup, pending: list, population: str) -> str:
    """The start line: what runs, on what, where it lands, whether it resumes, how many units at once."""
    config, plan, data, store = setup.config, setup.plan, setup.data, setup.store
    t = config.training
    remaining = plan.remaining
    branches = ", ".join(b.key() for b in setup.branches[1:]) or "none"
    if not pending:
        state = "finished already: nothing to train"
    elif any(store.replicate(r).levels() for r in range(config.plan.replicates)):
        r, level, branch, _ = pending[0]
        state = f"resuming at replicate {r}, level {level} ({branch}): {len(pending)} branch-levels to train"
    else:
        state = f"{len(pending)} branch-levels to train"
    structure = setup.plan.strategy.structure.kind
    return (f"run {store.path} | {data.info['dataset']} ({data.info['source']}, {data.num_train} train) | "
            f"{config.model.name} | {config.pruning.strategy} pruning"
            f"{'' if structure == 'unstructured' else ' in ' + structure}, levels {plan.levels[0]}-{plan.levels[-1]} "
            f"({100 * remaining[plan.levels[-1]]:.1f}% remaining at the last), rewind {config.pruning.rewind} | "
            f"{t.optimizer} lr {t.lr:g}, batch {t.batch_size}, {t.steps} ({plan.steps} steps) per level | "
            f"baselines: {branches} | replicates: {config.plan.replicates} | population {population} | {state}")


def pruned_layers(plan) -> list[str]:
    return [layer_of(k) for k in plan.strategy.kinds]
