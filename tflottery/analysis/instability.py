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

from tflottery.config import Step
from tflottery.errors import ConfigError
from tflottery.files import read_json, write_json

THRESHOLD = 2.0


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
                 "train_instability": p["train_instability"], "stable": p["stable"],
                 "end_test_accuracy": p["end_test_accuracy"]} for p in self.points]


def instability(run: "str | Path", level: int = 0, rewind: "list | tuple | str" = ("0it",), *, copies: int = 2,
                alphas: int = 30, threshold: float = THRESHOLD, replicate: int = 0, same_order: bool = False,
                train_examples: int = 10000, recapture: bool = False, verbose: Optional[bool] = None,
                callbacks: tuple = ()) -> InstabilityResult:
    """Train `copies` copies of `level` from each rewind point, and measure the error barrier between them.

    `rewind`: steps of the dense run ("0it,500it,2ep" or a list). `same_order=True` gives every
    copy the same batch order (a control: the copies then end identical, instability 0).
    `recapture` replays the dense run once (deterministic: the same weights) to keep rewind
    points that it did not keep the first time.
    """
    check_arguments(level, copies, alphas, threshold, train_examples)
    from tflottery.engine.imp import open_replicate
    from tflottery.engine.interpolate import measure_point

    rep = open_replicate(run, replicate, callbacks, verbose)
    finished = rep.replicate.levels()
    if level not in finished:
        raise ConfigError(f"Level {level} of {rep.replicate.path} is not finished; finished levels: {finished}. "
                          "Train it with `tflottery find` first.")
    steps = resolve_steps(rewind, rep)
    store = rep.replicate
    missing = [s for s in steps if s and level == 0 and s not in store.captured_steps()]
    result = InstabilityResult(Path(run), level, replicate, threshold)
    from tflottery.engine.store import RunStore

    lock = RunStore(Path(run)).lock()
    try:
        if missing:
            if not recapture:
                rep.dense_weights(missing[0])  # the clear error: not kept, and how to keep it
            replay_dense(rep, missing)
        for step in steps:
            key = analysis_key(step, copies, alphas, train_examples, same_order)
            path = store.path / f"level_{level}" / "instability" / f"step_{step}-{key}.json"
            if path.exists():
                point = read_json(path)
            else:
                point = measure_point(rep, level, step, copies, alphas, min(train_examples, rep.data.num_train),
                                      same_order)
                point.update(copies_count=copies, alphas_count=alphas, train_examples=train_examples,
                             same_order=same_order, threshold=threshold)
                write_json(path, point)
            point["stable"] = point["instability"] < threshold
            point["file"] = str(path)
            result.points.append(point)
            if rep.config.training.verbose:
                print(f"[tflottery] level {level} ({100 * point['remaining']:.1f}% remaining) rewound to step {step}: "
                      f"instability {point['instability']:.2f} points (train {point['train_instability']:.2f})"
                      f" -> {'stable' if point['stable'] else 'unstable'} at {threshold} points", flush=True)
    finally:
        lock.unlock()
    return result


def check_arguments(level, copies, alphas, threshold, train_examples) -> None:
    for name, value, low in (("level", level, 0), ("copies", copies, 2), ("alphas", alphas, 3),
                             ("train_examples", train_examples, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}={value!r} must be an integer >= {low}" +
                              (": instability compares at least two copies." if name == "copies" else
                               ": the path needs its two ends and a point between." if name == "alphas" else "."))
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold) \
            or threshold <= 0:
        raise ConfigError(f"threshold={threshold!r} must be a positive number of percentage points, e.g. 2.0.")


def resolve_steps(rewind, rep) -> list[int]:
    """Rewind points as steps, each checked against the training length and the level."""
    points = [p.strip() for p in rewind.split(",")] if isinstance(rewind, str) else list(rewind)
    if not points:
        raise ConfigError("rewind: give at least one step, e.g. --rewind=0it,500it.")
    steps = []
    for point in points:
        step = Step.parse(point, "rewind").to_steps(rep.data.steps_per_epoch)
        if step >= rep.end_step:
            raise ConfigError(f"rewind point {point} (step {step}) is beyond the training length "
                              f"({rep.end_step} steps): nothing would remain to train.")
        steps.append(step)
    return list(dict.fromkeys(steps))


def replay_dense(rep, steps: list) -> None:
    """Train the dense network again from its initialisation to keep `steps`, checking it is the same run."""
    from tflottery.engine import branches
    from tflottery.engine.optim import reset_optimizer
    from tflottery.engine.train import train_level
    from tflottery.errors import RunError
    from tflottery.pruning import wrap as wrap_lib

    kept = rep.replicate.captured_steps()
    check = [s for s in kept if s <= max(steps)]
    model = rep.model_for(None, rep.config.training, rep.data)
    wrap_lib.set_weights(model, rep.init)
    wrap_lib.set_masks(model, rep.all_ones())
    reset_optimizer(model, 0)
    ticket = branches.Ticket()
    result = train_level(model, rep.data, rep.config.training, start=0, end=max(steps),
                         seed=ticket.seed(rep, 0, "data_order"), captures=set(steps) | set(check),
                         get_weights=wrap_lib.get_weights, label="replaying the dense run: ")
    for step in check:
        old = rep.replicate.load_capture(step)
        if any((old[k] != result.captured[step][k]).any() for k in old):
            raise RunError(f"Replaying {rep.replicate.path}'s dense run did not reproduce its weights at step {step}: "
                           "training is not deterministic on this machine, so the replay cannot stand in for it.")
    for step in steps:
        rep.replicate.save_capture(step, result.captured[step])


def analysis_key(step: int, copies: int, alphas: int, train_examples: int, same_order: bool) -> str:
    text = json.dumps([step, copies, alphas, train_examples, same_order])
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def stored(run: "str | Path") -> list[dict]:
    """Every instability analysis a run holds (for plots and reports)."""
    out = []
    for path in sorted(Path(run).glob("replicate_*/level_*/instability/step_*.json")):
        point = read_json(path)
        point["replicate"] = int(path.parts[-4].split("_")[1])
        point["file"] = str(path)
        out.append(point)
    return out
