"""Instability analysis (Frankle, Dziugaite, Roy & Carbin 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis").

A network is stable to SGD noise at step k when copies of it, trained from its weights at step
k with different batch orders (and nothing else different), end in one linearly connected
region: the test error along the straight line between them rises by less than 2 points over
the mean of the two ends. Level 0 is the dense network (any step of its training that the
run kept); level L >= 1 is the IMP subnetwork, analysed at the run's own rewind step (IMP
rewinding to another step finds another subnetwork: that is another run).

Everything is stored under the run: the copies as branches `level_<L>/copy-<hash>/` (trained
side by side, resumable like any branch), the curves and numbers in
`level_<L>/instability/step_<k>-<hash>.json`.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tflottery.analysis.base import Analysis
from tflottery.core.errors import ConfigError
from tflottery.core.stats import STABLE_PP
from tflottery.core.steps import Step

THRESHOLD = STABLE_PP
KIND = "instability"  # the analysis records' folder in a level


@dataclass
class InstabilityResult:
    """The analysis of one level at each rewind point, in the order asked for."""

    run: Path
    level: int
    replicate: int
    threshold: float
    points: list = field(default_factory=list)  # measure_point dicts, plus "stable" and "file"

    def table(self) -> list[dict]:
        return [{"rewind_step": p["rewind_step"], "remaining": p["remaining"], "instability": p["instability"],
                 "instability_low": p["interval"]["low"], "instability_high": p["interval"]["high"],
                 "train_instability": p["train_instability"], "stable": p["stable"], "verdict": p["verdict"],
                 "end_test_accuracy": p["end_test_accuracy"]} for p in self.points]


def instability(run: "str | Path", level: int = 0, rewind: "list | tuple | str" = ("0it",), *, copies: int = 4,
                alphas: int = 30, threshold: float = THRESHOLD, replicate: int = 0, same_order: bool = False,
                train_examples: int = 10000, recapture: bool = False, verbose: Optional[bool] = None,
                callbacks: tuple = (), force: bool = False) -> InstabilityResult:
    """Train `copies` copies of `level` from each rewind point, and measure the error barrier between them.

    The barrier is the mean over every pair of copies with its 95% interval (a jackknife over the
    copies: pairs that share a copy are not independent); `stable` holds when the whole interval
    lies below `threshold`, and `verdict` says stable, unstable or undecided (4 copies, the
    default, give 6 pairs trained as one population group; 2 copies give one pair and no interval).

    `rewind`: steps of the dense run ("0it,500it,2ep" or a list). `same_order=True` gives every
    copy the same batch order (a control: the copies then end identical, instability 0).
    `recapture` replays the dense run once (deterministic: the same weights) to keep rewind
    points that it did not keep the first time.
    """
    from tflottery.core.values import as_bool

    force, same_order, recapture = as_bool(force, "force"), as_bool(same_order, "same_order"), as_bool(
        recapture, "recapture")
    check_arguments(level, copies, alphas, threshold, train_examples, force)
    from tflottery.engine.run import open_run, replicate_context
    from tflottery.engine.trainer import trainer_kind
    from tflottery.engine.stability import measure_point, stability_verdict

    setup = open_run(run, verbose)
    trainer_kind(setup.config.training).check_analysis("instability", setup.store.path)
    ctx = replicate_context(setup, replicate, callbacks)
    store = ctx.store
    finished = store.levels()
    if level not in finished:
        raise ConfigError(f"Level {level} of {store.path} is not finished; finished levels: {finished}. "
                          "Train it with `tflottery find` first.")
    steps = resolve_steps(rewind, ctx)
    missing = [s for s in steps if s and level == 0 and s not in store.captured_steps()]
    result = InstabilityResult(Path(run), level, replicate, threshold)
    setup.store.lock()
    try:
        if missing:
            if not recapture:
                ctx.dense_weights(missing[0])  # the clear error: not kept, and how to keep it
            replay_dense(ctx, missing)
        for step in steps:
            key = f"step_{step}-{analysis_key(step, copies, alphas, train_examples, same_order)}"
            point = store.load_analysis(level, KIND, key)
            if point is None:
                point = measure_point(ctx, level, step, copies, alphas, min(train_examples, ctx.data.num_train),
                                      same_order)
                point.update(copies_count=copies, alphas_count=alphas, train_examples=train_examples,
                             same_order=same_order, threshold=threshold)
                store.save_analysis(level, KIND, key, point)
            barrier = barrier_interval(point)
            point["interval"] = barrier.to_dict()
            point["verdict"] = stability_verdict(barrier, threshold)
            point["stable"] = point["verdict"].startswith("stable")
            point["file"] = str(store.analysis_path(level, KIND, key))
            result.points.append(point)
            if setup.config.training.verbose:
                print(f"[tflottery] level {level} ({100 * point['remaining']:.1f}% remaining) rewound to step {step}: "
                      f"instability {barrier.text()} points over {copies} copies (train "
                      f"{point['train_instability']:.2f}) -> {point['verdict']} at {threshold} points", flush=True)
    finally:
        setup.store.unlock()
    return result


def barrier_interval(point: dict):
    """The barrier's interval of a stored point (points stored before 0.3 carry only their pairs)."""
    from tflottery.core.stats import jackknife_pairs

    return jackknife_pairs({tuple(p["pair"]): p["instability"] for p in point["pairs"]})


MAX_COPIES = 64  # more only with force=True: each copy is a full training


def check_arguments(level, copies, alphas, threshold, train_examples, force: bool = False) -> None:
    for name, value, low in (("level", level, 0), ("copies", copies, 2), ("alphas", alphas, 3),
                             ("train_examples", train_examples, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}={value!r} must be an integer >= {low}" +
                              (": instability compares at least two copies." if name == "copies" else
                               ": the path needs its two ends and a point between." if name == "alphas" else "."))
    if copies > MAX_COPIES and not force:
        raise ConfigError(f"copies={copies} would train {copies} networks from each rewind point and compare "
                          f"{copies * (copies - 1) // 2} pairs: at most {MAX_COPIES} unless you mean it (--force=true).")
    if alphas > 1000 or train_examples > 10 ** 7:
        raise ConfigError(f"alphas={alphas} and train_examples={train_examples} must stay at most 1000 and 10,000,000.")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold) \
            or threshold <= 0:
        raise ConfigError(f"threshold={threshold!r} must be a positive number of percentage points, e.g. 2.0.")


def resolve_steps(rewind, ctx) -> list[int]:
    """Rewind points as steps, each checked against the training length and the level."""
    points = [p.strip() for p in rewind.split(",")] if isinstance(rewind, str) else list(rewind)
    if not points:
        raise ConfigError("rewind: give at least one step, e.g. --rewind=0it,500it.")
    steps = []
    for point in points:
        Step.parse(point, "rewind")
        step = ctx.plan.iterations(point)
        if step >= ctx.end_step:
            raise ConfigError(f"rewind point {point} (step {step}) is beyond the training length "
                              f"({ctx.end_step} steps): nothing would remain to train.")
        steps.append(step)
    return list(dict.fromkeys(steps))


def replay_dense(ctx, steps: list) -> None:
    """Train the dense network again from its initialisation to keep `steps`, checking it is the same run."""
    import dataclasses

    from tflottery.engine.branches import Ticket
    from tflottery.engine.units import make_unit
    from tflottery.core.errors import RunError

    kept = ctx.store.captured_steps()
    check = [s for s in kept if s <= max(steps)]
    unit = make_unit(ctx, 0, Ticket())
    unit.start = dataclasses.replace(unit.start, end_step=max(steps), captures=set(steps) | set(check), watch=None)
    (replayed,) = ctx.trainer.train([unit])
    captured = replayed.result.captured
    for step in check:
        old = ctx.store.load_capture(step)
        if any((old[k] != captured[step][k]).any() for k in old):
            raise RunError(f"Replaying {ctx.store.path}'s dense run did not reproduce its weights at step {step}: "
                           "training is not deterministic on this machine, so the replay cannot stand in for it.")
    for step in steps:
        ctx.store.save_capture(step, captured[step])


def analysis_key(step: int, copies: int, alphas: int, train_examples: int, same_order: bool) -> str:
    text = json.dumps([step, copies, alphas, train_examples, same_order])
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def stored(run: "str | Path") -> list[dict]:
    """Every instability analysis a run holds (for plots and reports)."""
    from tflottery.engine.store import RunStore

    store = RunStore.open(run)
    out = []
    for r in store.replicates():
        for level, point in store.replicate(r).analyses(KIND):
            out.append({**point, "replicate": r})
    return out



class Instability(Analysis):
    name = "instability"
    description = "linear mode connectivity: error along the path between copies, and instability against rewind step"
    suffix = "_instability"
    kinds = ("copy",)
    command = "instability"

    def figures(self, runs, out: Path, metric: str, **options) -> list:
        from tflottery import plots

        figures = []
        for store in runs.stores:
            points = [point for r in store.replicates() for _, point in store.replicate(r).analyses(KIND)]
            if points:
                name = "" if len(runs.stores) == 1 else f"_{store.name}"
                figures += plots.instability_figures(points, out.with_name(f"{out.stem}{name}{self.suffix}.png"))
        return figures
