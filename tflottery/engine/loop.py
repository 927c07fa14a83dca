"""The level loop of iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020).

Level 0 trains the dense network for T steps, keeping its weights at the rewind step k. Level
L >= 1 prunes the ticket of level L-1 by the magnitude of its *trained* weights to the plan's
counts, rewinds the survivors to step k, and trains them from step k to T with fresh optimizer
moments and the learning-rate schedule at step k (open_lth's protocol). Each branch of a level
(the ticket, its baselines) trains through the same hooks, in the same run directory, resuming
where a previous call stopped.

The loop trains waves of ready units: every replicate's units whose inputs exist and no other
process holds (a lock per unit: any number of processes share one run), grouped by the
scheduler into population programs of up to `population` units. Seeds never depend on the
order, the grouping or the process, so any of them writes the same bytes.
"""
from __future__ import annotations

import os
import random
import socket
import time

from tflottery.core.errors import RunError
from tflottery.core.files import clean_leftovers
from tflottery.engine import scheduler
from tflottery.engine.context import ReplicateContext, RunSetup
from tflottery.engine.graph import DONE, PROBE, UnitPlan, trains_at, unit_name
from tflottery.engine.progress import Progress
from tflottery.core.names import TICKET
from tflottery.engine.units import make_unit, ready_units, save_unit

WAIT_S = 3600.0  # how long a process waits, with nothing it can take, for units other processes hold
POLL_S = 1.0  # the first pause of an idle process; each listing that finds nothing new doubles it ...
MAX_POLL_S = 60.0  # ... up to this, with jitter; a unit committed anywhere in the run ends the pause early (a unit
# that a dead worker let go, which commits nothing, is seen within this)


def train_run(setup: RunSetup, executor, progress: Progress, plan: "UnitPlan | None" = None, wait: float = WAIT_S,
              announce: bool = False, poll: float = POLL_S) -> list[tuple]:
    """Train every unfinished unit of `plan` (default: the run's own, `run_plan`) that no other process holds;
    the (replicate, level, branch) keys trained here. Waves: claim up to `executor.capacity` ready units, train
    them (`executor.run`), store them, release them, list again; with nothing to take, wait for the units others
    hold (`wait` seconds without any unit finishing, then a RunError naming them). `announce`: say what each
    wave holds."""
    plan = plan or run_plan(setup)
    contexts = {r: ReplicateContext(setup, r, executor.trainer, progress) for r in plan.replicates}
    trained: list = []
    idle = Idle(setup, plan, contexts, wait, poll)
    while True:
        if plan.probe and run_probes(setup, contexts.values()):
            continue
        held = claim(setup.store, ready_units(contexts, plan), executor.capacity)
        if not held:
            if not idle.wait():
                return trained
            continue
        try:
            units = [make_unit(ctx, level, branch) for _, (ctx, level, branch) in held]
            if announce:
                progress.say(f"{os.getpid()}@{socket.gethostname()} holds {', '.join(u.label for u in units)}")
            grouped = []
            for unit in units:
                own = unit.branch.train(unit.ctx, unit)
                if own is None:
                    grouped.append(unit)
                else:
                    trained.append(save_unit(unit, own))
            for group, results in executor.run(scheduler.groups(grouped, executor.population)):
                trained += [save_unit(unit, result) for unit, result in zip(group, results)]
        finally:
            for lock, _ in held:
                lock.release()


def run_plan(setup: RunSetup) -> UnitPlan:
    """The units of the run's own plan: every replicate's levels of every branch (and rewind=auto's probes)."""
    return UnitPlan.of_run(setup.plan.levels, setup.branches, setup.plan.replicates, setup.plan.rewind_step is None,
                           setup.plan.baseline_levels)


def claim(store, ready: list, capacity: int) -> list[tuple]:
    """(lock, (ctx, level, branch)) of up to `capacity` ready units this process could claim, each checked
    unfinished after its claim and its folder cleared of what an earlier holder (dead) left half-written."""
    held = []
    for ctx, level, branch in ready:
        if len(held) >= capacity:
            break
        lock = store.claim(unit_name(ctx.replicate_index, level, branch.key()))
        if lock is None:
            continue
        if ctx.store.is_done(level, branch.key()):  # finished between the listing and the claim
            lock.release()
            continue
        clean_leftovers(ctx.store.level_dir(level, branch.key()), any_owner=True)
        if level == 0 and branch.key() == TICKET:
            clean_leftovers(ctx.store.path / "captures", any_owner=True)
        held.append((lock, (ctx, level, branch)))
    return held


def run_probes(setup: RunSetup, contexts: list) -> bool:
    """rewind=auto: run the probe of every replicate whose dense level is trained and whose probe no one
    holds; whether any ran."""
    from tflottery.engine.stability import probe_rewind

    ran = False
    for ctx in contexts:
        if setup.plan.rewind_step is not None or not ctx.store.is_done(0) or ctx.rewind_known():
            continue
        lock = setup.store.claim(unit_name(ctx.replicate_index, None, PROBE))
        if lock is None:
            continue
        try:
            if not ctx.rewind_known():
                clean_leftovers(ctx.store.path, "rewind.json", any_owner=True)
                for name in ctx.store.branches_begun(0):
                    clean_leftovers(ctx.store.level_dir(0, name), any_owner=True)
                probe_rewind(ctx)
                ran = True
        finally:
            lock.release()
    return ran


class Idle:
    """Waiting, with nothing to take, for the units of `plan` other processes hold."""

    def __init__(self, setup: RunSetup, plan: UnitPlan, contexts: dict, wait: float, poll: float):
        self.setup, self.plan, self.contexts, self.wait_s, self.poll = setup, plan, contexts, wait, poll
        self.seen, self.since, self.pause = None, time.monotonic(), poll
        self.random = random.Random(os.getpid())  # jitter: idle workers started together drift apart

    def unfinished(self) -> list:
        return [u for r, ctx in self.contexts.items() for u in self.plan.units(ctx.store, r) if u.state != DONE]

    def wait(self) -> bool:
        """False once the run is finished; else sleep a moment (True), or a RunError after `wait` seconds
        in which no unit finished anywhere."""
        left = self.unfinished()
        if not left:
            return False
        if len(left) != self.seen:
            self.seen, self.since, self.pause = len(left), time.monotonic(), self.poll
        elif time.monotonic() - self.since > self.wait_s:
            running = self.setup.store.running()
            held = "; ".join(f"{name}: {line}" for name, line in sorted(running.items())) or "no live process"
            raise RunError(f"{self.setup.store.path}: nothing this process can take became ready in {self.wait_s:g} s "
                           f"({len(left)} units unfinished; held by others: {held}). This process stops; the run "
                           "resumes with any `tflottery worker` or `find` of it (raise --wait to wait longer).")
        self.sleep(self.random.uniform(self.poll, max(self.poll, self.pause)))
        self.pause = min(2 * self.pause, MAX_POLL_S)
        return True

    def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`, looking every 2 `poll`s at one file only: the run's commit stamp, which every
        committed unit changes (then list again at once)."""
        stamp, end = self.setup.store.commit_stamp(), time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(2 * self.poll, left))
            if self.setup.store.commit_stamp() != stamp:
                self.pause = self.poll
                return


def pending_steps(setup: RunSetup) -> list[tuple]:
    """(replicate, level, branch key, steps) of every unit the plan has yet to train."""
    out = []
    for r in range(setup.plan.replicates):
        store = setup.store.replicate(r)
        for level in setup.plan.levels:
            for branch in setup.branches:
                if trains_at(branch, level, setup.plan.baseline_levels) and not store.is_done(level, branch.key()):
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
