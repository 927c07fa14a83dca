"""A run as a graph of units, read from its directory alone (no TensorFlow): what is done, ready, waiting.

A unit is one training: a replicate's level of one branch, or (rewind=auto) a replicate's
probe. Level L of replicate r waits for the ticket of r's previous planned level and for its
rewind step (the probe's choice); a branch that reads its level's ticket
(`needs_trained_ticket`) waits for that ticket too; replicates never wait for each other.
Each unit has a name (`r0-level_3-reinit`, `r0-probe`): its lock file's (`RunStore.claim`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tflottery.core.names import TICKET

DONE, RUNNING, READY, WAITING, DAMAGED, FAILED = "done", "running", "ready", "waiting", "damaged", "failed"
PROBE = "probe"


def unit_name(replicate: int, level: Optional[int], branch: str) -> str:
    return f"r{replicate}-{PROBE}" if branch == PROBE else f"r{replicate}-level_{level}-{branch}"


@dataclass
class UnitState:
    replicate: int
    level: Optional[int]  # None for a probe
    branch: str  # a branch key, or PROBE
    state: str
    holder: Optional[str] = None  # who trains it now (RUNNING)
    branch_kind: object = None  # the Branch (None for a probe)

    @property
    def name(self) -> str:
        return unit_name(self.replicate, self.level, self.branch)


@dataclass
class UnitPlan:
    """What one call of the level loop trains: per replicate its levels (in order) of every branch in `branches`
    (`probe`: rewind=auto's probe first; `baseline_levels`: the levels the baselines train at). A run's own plan
    (`of_run`) and a transfer (the chosen finished levels, transfer branches) are both one of these."""

    levels: dict  # replicate -> its levels
    branches: list
    probe: bool = False
    baseline_levels: Optional[list] = None

    @classmethod
    def of_run(cls, levels: list, branches: list, replicates: int, probe: bool,
               baseline_levels: Optional[list] = None) -> "UnitPlan":
        return cls({r: list(levels) for r in range(replicates)}, list(branches), probe, baseline_levels)

    @property
    def replicates(self) -> list:
        return list(self.levels)

    def units(self, replicate_store, replicate: int, failed=frozenset()) -> "list[UnitState]":
        """Every unit of `replicate` (its ReplicateStore) in training order, with its state (`failed`: the names of
        the run's units marked failed)."""
        return replicate_units(replicate_store, replicate, self.levels[replicate], self.branches, self.probe,
                               self.baseline_levels, failed)


def trains_at(branch, level: int, baseline_levels: Optional[list] = None) -> bool:
    """Whether `branch` has a unit at `level` (`plan.baseline_levels` limits the baselines, never the ticket)."""
    return branch.applies(level) and (baseline_levels is None or branch.key() == TICKET or level in baseline_levels)


def replicate_units(store, replicate: int, levels: list, branches: list, probe: bool,
                    baseline_levels: Optional[list] = None, failed=frozenset()) -> list[UnitState]:
    """Every planned unit of one replicate (`store`: its ReplicateStore), in training order, with its state
    done / ready / waiting / failed (`probe`: rewind=auto, whose choice every pruned level waits for; `failed`:
    names of units marked failed, which the units after them wait for until `--retry_failed`)."""
    rewind_known = not probe or store.rewind_choice() is not None
    out = []
    if probe:
        state = DONE if rewind_known else READY if store.is_done(levels[0]) else WAITING
        out.append(UnitState(replicate, None, PROBE, state))
    blocked = False
    for i, level in enumerate(levels):
        blocked = blocked or (i > 0 and not (store.is_done(levels[i - 1]) and rewind_known))
        for branch in branches:
            if not trains_at(branch, level, baseline_levels):
                continue
            key = branch.key()
            if store.is_done(level, key):
                state = DONE
            elif unit_name(replicate, level, key) in failed:
                state = FAILED
            elif blocked or (branch.needs_trained_ticket and not store.is_done(level, TICKET)):
                state = WAITING
            else:
                state = READY
            out.append(UnitState(replicate, level, key, state, branch_kind=branch))
    return out


def run_units(run_store, plan: UnitPlan) -> list[UnitState]:
    """Every unit of `plan` in the run, a unit some live process holds marked RUNNING with its holder."""
    running, failed = run_store.running(), set(run_store.failed())
    units = [u for r in plan.replicates for u in plan.units(run_store.replicate(r), r, failed)]
    for unit in units:
        if unit.state != DONE and unit.name in running:
            unit.state, unit.holder = RUNNING, running[unit.name]
    return units


def status(path) -> dict:
    """Where a run stands, from its directory: counts of done / running / ready / waiting units (queued transfers'
    included), the running ones with their holders (host and pid), and the next ready ones. Reads only."""
    from tflottery.engine.resolve import resolve
    from tflottery.engine.store import RunStore
    from tflottery.engine.transfers import queued

    store = RunStore.open(path)
    config, plan = store.run_config(), store.plan()
    units = run_units(store, UnitPlan.of_run(plan["levels"], resolve(config).branches, config.plan.replicates,
                                             plan.get("rewind_step") is None, config.plan.baseline_levels))
    for levels, branches in queued(store, pending_only=False):  # transfers in the run's work queue
        units += run_units(store, UnitPlan(levels, branches))
    damaged = {unit_name(r, level, branch): problem for r, level, branch, problem in store.damaged()}
    for unit in units:
        if unit.state == DONE and unit.name in damaged:
            unit.state = DAMAGED
    failed = store.failed()
    counts = {s: sum(u.state == s for u in units) for s in (DONE, RUNNING, READY, WAITING, DAMAGED, FAILED)}
    return {"run": str(store.path), "units": len(units), **counts,
            "running_units": [{"unit": u.name, "holder": u.holder} for u in units if u.state == RUNNING],
            "ready_units": [u.name for u in units if u.state == READY],
            "damaged_units": [{"unit": name, "problem": problem} for name, problem in damaged.items()],
            "failed_units": [{"unit": u.name, "tries": failed[u.name].get("tries"),
                              "error": (failed[u.name].get("errors") or ["?"])[-1]}
                             for u in units if u.state == FAILED],
            "finished": counts[DONE] == len(units)}


def failed_text(failed: list) -> list[str]:
    """A line per failed unit (`status`'s `failed_units`): its name, tries and last error's first line."""
    return [f"  failed {u['unit']} after {u['tries']} tries: {str(u['error']).splitlines()[0] if u['error'] else '?'} "
            "(`tflottery find --retry_failed` tries it again)" for u in failed]


def status_text(report: dict) -> str:
    lines = [f"{report['run']}: {report['done']}/{report['units']} units done, {report['running']} running, "
             f"{report['ready']} ready, {report['waiting']} waiting"
             + (f", {report['damaged']} damaged" if report["damaged"] else "")
             + (f", {report['failed']} failed" if report.get("failed") else "")
             + (" (finished)" if report["finished"] else "")]
    lines += failed_text(report.get("failed_units", []))
    lines += [f"  damaged {u['unit']}: {u['problem']} (`tflottery find` or a worker retrains it)"
              for u in report["damaged_units"]]
    lines += [f"  running {u['unit']}: {u['holder']}" for u in report["running_units"]]
    ready = report["ready_units"]
    if ready:
        lines.append(f"  ready: {', '.join(ready[:12])}" + (f" and {len(ready) - 12} more" if len(ready) > 12 else "")
                     + " (start `tflottery worker " + report["run"] + "` to train them)")
    return "\n".join(lines)
