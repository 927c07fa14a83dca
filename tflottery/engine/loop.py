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

import logging
import math
import os
import random
import socket
import time
import traceback

from tflottery.core.errors import DamagedError, RunError, TflotteryError
from tflottery.core.files import clean_leftovers
from tflottery.core.runner import Stopped, stop_received
from tflottery.engine import scheduler
from tflottery.engine.context import ReplicateContext, RunSetup
from tflottery.engine.graph import DONE, FAILED, PROBE, READY, UnitPlan, trains_at, unit_name
from tflottery.engine.leases import WAIT_S, LeaseLost, Leases, Sharing
from tflottery.engine.progress import Progress
from tflottery.core.names import TICKET, is_layer_kernel, target_label
from tflottery.engine.units import make_unit, ready_units, save_unit, unit_states

POLL_S = 1.0  # the first pause of an idle process; each listing that finds nothing new doubles it ...
MAX_POLL_S = 60.0  # ... up to this (and half the lease), with jitter; a unit committed anywhere in the run ends the
# pause early (a unit that a dead worker let go, which commits nothing, is seen within this)
_log = logging.getLogger("tflottery")


def train_run(setup: RunSetup, executor, progress: Progress, plan: "UnitPlan | None" = None,
              sharing: "Sharing | None" = None, poll: float = POLL_S) -> list[tuple]:
    """Train every unfinished unit of `plan` (default: the run's own, `run_plan`) that no other process holds;
    the (replicate, level, branch) keys trained here. Claim this process's fair share of the ready units
    (`claim`), submit them to `executor` in groups, store each group as it comes back and release its units,
    list again; with nothing to take, wait for the units others hold (`Idle`). `sharing`: the lease, the
    tries before a unit is marked failed, the wait; a unit that failed `tries` times is skipped, and once only
    failed units and those after them are left, a RunError names them."""
    plan = plan or run_plan(setup)
    sharing = (sharing or Sharing()).check()
    store = setup.store
    if sharing.retry_failed:
        for name in store.clear_failures():
            progress.say(f"{name}: its failures are cleared (--retry_failed); it trains again")
    contexts = {r: ReplicateContext(setup, r, executor.trainer, progress) for r in plan.replicates}
    leases = Leases(store, sharing.lease)
    idle = Idle(setup, sharing, poll)
    trained: list = []
    try:
        while True:
            if plan.probe and run_probes(setup, contexts.values(), leases):
                continue
            states = unit_states(contexts, plan, set(store.failed()))  # the run listed once per pass
            room = executor.capacity - executor.in_flight
            new = claim(store, leases, ready_units(states), room) if room > 0 else []
            if new:
                trained += submit(executor, new, leases, sharing, progress)
            if executor.in_flight:
                trained += collect(executor, leases, sharing)
                continue
            if not new and not idle.wait([u for _, u in states if u.state != DONE]):
                return trained
    finally:
        leases.close()


def run_plan(setup: RunSetup) -> UnitPlan:
    """The units of the run's own plan: every replicate's levels of every branch (and rewind=auto's probes)."""
    return UnitPlan.of_run(setup.plan.levels, setup.branches, setup.plan.replicates, setup.plan.rewind_step is None,
                           setup.plan.baseline_levels)


def claim(store, leases: Leases, ready: list, room: int) -> list[tuple]:
    """(ctx, level, branch) of the ready units this process takes now: its fair share (ready units no one holds,
    over the run's active workers: at least 1, at most `room`), then units whose holder's lease expired. Each is
    checked unfinished after its claim, and its folder cleared of what an earlier holder left half-written."""
    free, expired = [], []
    for ctx, level, branch in ready:
        name = unit_name(ctx.replicate_index, level, branch.key())
        if name in leases.held:
            continue
        if leases.probe(name) is None:
            free.append((name, (ctx, level, branch)))
        elif leases.expired(name):
            expired.append((name, (ctx, level, branch)))
    if not free and not expired:
        return []
    share = min(room, max(1, math.ceil(len(free) / store.active_workers())) if free else room)
    held, free_names = [], {name for name, _ in free}
    for name, item in free + expired:
        if len(held) >= share:
            break
        lock = store.claim(name) if name in free_names else leases.take_over(name)
        if lock is None:
            continue
        ctx, level, branch = item
        if ctx.store.is_done(level, branch.key()):  # finished between the listing and the claim
            lock.release()
            continue
        leases.hold(name, lock)
        clean_leftovers(ctx.store.level_dir(level, branch.key()), any_owner=True)
        if level == 0 and branch.key() == TICKET:
            clean_leftovers(ctx.store.path / "captures", any_owner=True)
        held.append(item)
    return held


def submit(executor, held: list, leases: Leases, sharing: Sharing, progress: Progress) -> list:
    """Draw the starts of the claimed units and submit them to `executor` in groups (a unit that failed before
    trains alone, so that a group's failure is pinned on the unit that causes it); units whose branch trains
    them itself train here. The keys stored here."""
    units, trained = [], []
    for ctx, level, branch in held:
        name = unit_name(ctx.replicate_index, level, branch.key())
        try:
            unit = make_unit(ctx, level, branch)
        except DamagedError as error:  # a parent read now is not what it wrote: it trains again
            _log.warning("%s", error)
            retrain_damaged(ctx.setup.store)
            leases.release(name)
            continue
        except Exception as error:
            fail(ctx.setup.store, name, error, sharing)
            leases.release(name)
            continue
        unit.alone = ctx.setup.store.failure(name) is not None
        units.append(unit)
    if sharing.announce and units:
        progress.say(f"{os.getpid()}@{socket.gethostname()} holds {', '.join(u.label for u in units)}")
    grouped = []
    for unit in units:
        try:
            own = unit.branch.train(unit.ctx, unit)
        except Exception as error:
            fail(unit.ctx.setup.store, unit.name, error, sharing)
            leases.release(unit.name)
            continue
        if own is None:
            grouped.append(unit)
        else:
            trained += store_unit(unit, own, leases, sharing)
            leases.release(unit.name)
    for group in scheduler.groups(grouped, executor.population):
        executor.submit(group)
    return trained


def collect(executor, leases: Leases, sharing: Sharing) -> list:
    """Take one finished group back from `executor`: store its units (or count its failure against each),
    release them; the keys stored."""
    group, results, error = executor.next_done()
    trained = []
    try:
        for i, unit in enumerate(group):
            if error is None:
                trained += store_unit(unit, results[i], leases, sharing)
            else:
                fail(unit.ctx.setup.store, unit.name, error, sharing)
    finally:
        for unit in group:
            leases.release(unit.name)
    return trained


def store_unit(unit, result, leases: Leases, sharing: Sharing) -> list:
    """[its key] once `unit` is stored; [] if its lease was taken over meanwhile (one line) or it failed."""
    try:
        return [save_unit(unit, result, leases.fence(unit.name))]
    except LeaseLost as error:
        _log.warning("%s", error)
    except Exception as error:
        fail(unit.ctx.setup.store, unit.name, error, sharing)
    return []


def fail(store, name: str, error: BaseException, sharing: Sharing) -> None:
    """Count a failed try of unit `name` (its error and traceback kept in `.units/<unit>.failed`); one line. A
    user error (a TflotteryError: a setting to fix, said with its fix, the same on every try) is raised as it is,
    counted nowhere: the run resumes once it is fixed. An error that a stop signal caused is the stop, not a
    failure."""
    if isinstance(error, TflotteryError):
        raise error
    if stop_received():
        raise Stopped(stop_received()) from error
    text = f"{type(error).__name__}: {error}"
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    record = store.record_failure(name, text + "\n" + trace, sharing.tries)
    _log.warning("unit %s failed (try %d of %d): %s%s", name, record["tries"], sharing.tries, text.splitlines()[0],
                 "; it is marked failed and skipped (`tflottery status` shows its error; --retry_failed tries it "
                 "again)" if record["failed"] else "; it trains again, alone")


def retrain_damaged(store) -> list:
    """Every committed unit whose files are not what it wrote, taken back to unfinished (a line each), so that the
    loop trains it again; the (replicate, level, branch) taken back."""
    damaged = store.damaged(remember=True)
    for r, level, branch, problem in damaged:
        _log.warning("%s: replicate %d, level %d, %s is damaged and trains again", problem, r, level, branch)
        store.replicate(r).uncommit(level, branch)
    return [(r, level, branch) for r, level, branch, _ in damaged]


def run_probes(setup: RunSetup, contexts: list, leases: Leases) -> bool:
    """rewind=auto: run the probe of every replicate whose dense level is trained and whose probe no one
    holds; whether any ran."""
    from tflottery.engine.stability import probe_rewind

    ran = False
    for ctx in contexts:
        if setup.plan.rewind_step is not None or not ctx.store.is_done(0) or ctx.rewind_known():
            continue
        name = unit_name(ctx.replicate_index, None, PROBE)
        lock = setup.store.claim(name)
        if lock is None:
            continue
        leases.hold(name, lock)
        try:
            if not ctx.rewind_known():
                clean_leftovers(ctx.store.path, "rewind.json", any_owner=True)
                for branch in ctx.store.branches_begun(0):
                    clean_leftovers(ctx.store.level_dir(0, branch), any_owner=True)
                probe_rewind(ctx)
                ran = True
        finally:
            leases.release(name)
    return ran


class Idle:
    """Waiting, with nothing to take, for the units other processes hold."""

    def __init__(self, setup: RunSetup, sharing: Sharing, poll: float):
        self.setup, self.sharing, self.poll = setup, sharing, poll
        self.seen, self.since, self.pause = None, time.monotonic(), poll
        self.longest = max(poll, min(MAX_POLL_S, sharing.lease / 2))  # a lease that ran out is seen in time
        self.random = random.Random(os.getpid())  # jitter: idle workers started together drift apart

    def wait(self, left: list) -> bool:
        """False once the run is finished (`left`: its unfinished units); else sleep a moment (True); a RunError
        once only failed units and the units after them are left, or after `wait` seconds in which no unit
        finished anywhere."""
        if not left:
            return False
        if any(u.state == FAILED for u in left) and not any(u.state == READY for u in left):
            raise failed_error(self.setup.store, left)
        if len(left) != self.seen:
            self.seen, self.since, self.pause = len(left), time.monotonic(), self.poll
        elif time.monotonic() - self.since > self.sharing.wait:
            running = self.setup.store.running()
            held = "; ".join(f"{name}: {line}" for name, line in sorted(running.items())) or "no live process"
            raise RunError(f"{self.setup.store.path}: nothing this process can take became ready in "
                           f"{self.sharing.wait:g} s ({len(left)} units unfinished; held by others: {held}). This "
                           "process stops; the run resumes with any `tflottery worker` or `find` of it (raise --wait "
                           "to wait longer).")
        self.sleep(self.random.uniform(self.poll, max(self.poll, self.pause)))
        self.pause = min(2 * self.pause, self.longest)
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


def failed_error(store, left: list) -> RunError:
    """The error that ends a call once only failed units, and the units that wait for them, are left."""
    failed = store.failed()
    names = [u.name for u in left if u.state == FAILED]
    lines = "; ".join(f"{name} after {failed.get(name, {}).get('tries', '?')} tries: "
                      f"{(failed.get(name, {}).get('errors') or ['?'])[-1].splitlines()[0]}" for name in names)
    return RunError(f"{store.path}: {len(names)} unit(s) failed and {len(left) - len(names)} wait for them: {lines}. "
                    f"Fix the cause (the tracebacks are in {store.path}/.units/<unit>.failed), then `tflottery find "
                    "--retry_failed` (or a worker with --retry_failed) trains them again.")


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


def targets_text(strategy) -> str:
    """The banner's say of what is pruned when it is more than Dense and Conv kernels, and of what is left dense."""
    pruned, out = strategy.pruned, ""
    if not all(is_layer_kernel(k) for k in pruned):
        by_kind: dict = {}
        for k in pruned:
            by_kind[strategy.kinds[k]] = by_kind.get(strategy.kinds[k], 0) + strategy.sizes[k]
        out += (f"prunes {len(pruned)} variables ({', '.join(f'{kind} {n:,}' for kind, n in by_kind.items())} "
                "weights) | ")
    dense = [f"{target_label(k)} ({strategy.sizes[k]:,} weights, --unpruned)" for k in strategy.exempt]
    dense += [f"{name} ({what})" for name, what in strategy.left_dense.items()]
    return out + (f"left dense: {', '.join(dense)} | " if dense else "")


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
            f"({100 * remaining[plan.levels[-1]]:.1f}% remaining at the last, "
            f"{100 * plan.of_all(remaining[plan.levels[-1]]):.1f}% of all weights), rewind {config.pruning.rewind} | "
            + targets_text(plan.strategy) +
            f"{t.optimizer} lr {t.lr:g}, batch {t.batch_size}, {t.steps} ({plan.steps} steps) per level | "
            f"baselines: {branches} | replicates: {config.plan.replicates} | population {population} | {state}")
