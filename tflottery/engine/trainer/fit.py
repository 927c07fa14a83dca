"""Train a group of units from step `start` to `end` on a population model, evaluating as it goes.

The steps are cut at every evaluation and capture point into segments over exactly their batches
([a, b) of each unit's seeded order): no step is repeated or skipped, the compiled step
(steps_per_execution, optional XLA) is traced once per model, and evaluation or capture points
need no common divisor. Consecutive segments of one length train as the epochs of one `fit` call
(one pipeline, one iterator, one set-up: a third of a small level's time was `fit` starting over
per segment), with the work at each point done at the end of its epoch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

from tflottery.core.errors import ConfigError, RunError

PROGRESS_EVERY_S = 30.0


@dataclass
class LevelResult:
    history: list = field(default_factory=list)  # one dict per evaluation
    captured: dict = field(default_factory=dict)  # step -> weights, for the steps asked for
    wall_time_s: float = 0.0

    def summary(self) -> dict:
        """Early-stopping iteration (minimum validation loss) and test accuracy there, plus final numbers."""
        last = self.history[-1]
        key = "val_loss" if "val_loss" in last else "test_loss"
        best = min(self.history, key=lambda row: (row[key], row["step"]))
        return {"early_stop_step": best["step"], "early_stop_test_accuracy": best["test_accuracy"],
                "early_stop_metric": key, "final_test_accuracy": last["test_accuracy"],
                "final_test_loss": last["test_loss"], "final_val_accuracy": last.get("val_accuracy"),
                "wall_time_s": self.wall_time_s}


def evaluate(model, data) -> list[dict]:
    """Per unit: val_loss, val_accuracy (if the data has a validation set), test_loss, test_accuracy."""
    rows = [{} for _ in range(model.units)]
    for prefix, ds in (("val", data.validation), ("test", data.test)):
        if ds is not None:
            for row, numbers in zip(rows, model.evaluate_units(ds)):
                row.update({f"{prefix}_{k}": v for k, v in numbers.items()})
    return rows


def train_group(model, population_data, data, steps, *, start: int, end: int, captures=(), watch=None, rewire=None,
                callbacks: tuple = (), log_dirs: Optional[list] = None, label: str = "",
                verbose: bool = True) -> list[LevelResult]:
    """Train steps [start, end) of every unit of `model` (see the module's doc); one LevelResult per unit.

    `captures`: steps at which every unit's weights are kept. `watch` = (every, tracker) for a
    group of one: `tracker.check(step, weights)` runs every `every` steps and ends the level at
    the step it returns True. `rewire` = (steps, rewirer) for a group of one: `rewirer.update(step, model)`
    runs after each of those steps and may change the unit's mask and weights (dynamic sparse training).
    """
    if end <= start:
        raise ConfigError(f"training leaves no step to train after step {start} (it ends at {end}): train longer.")
    every = steps.eval_every
    evals = set(range(start + every, end, every)) | {end}
    kept = {c for c in captures if start < c <= end}
    watched = set(range(start + watch[0], end + 1, watch[0])) if watch and watch[0] > 0 else set()
    rewired = {s for s in rewire[0] if start < s < end} if rewire else set()
    points = sorted(evals | kept | watched | rewired)
    writers = _writers(log_dirs)
    results = [LevelResult() for _ in range(model.units)]
    began = time.perf_counter()

    def record(step: int, logs: Optional[dict] = None) -> None:
        for c, (result, row) in enumerate(zip(results, evaluate(model, data))):
            entry = {"step": step}
            if logs:
                entry.update(train_loss=float(logs[f"u{c}_loss"]), train_accuracy=float(logs[f"u{c}_accuracy"]))
            entry.update(row)
            result.history.append(entry)
            if writers:
                _log(writers[c], entry)

    record(start)
    clock = _Progress(label, start, end, began, results, model.units) if verbose else None

    def at_point(point: int, logs: dict) -> bool:
        """The work due after the step before `point`; True ends the level there."""
        if point in kept:
            for c, result in enumerate(results):
                result.captured[point] = model.get_tower(c)
        stop = point in watched and watch[1].check(point, model.get_tower(0))
        if point in evals or stop:
            record(point, logs)
            if stop:
                return True
            if clock is not None and point < end:
                clock.maybe_say(point)
        if point in rewired:  # after the step's evaluation: the record is of the trained mask
            rewire[1].update(point, model)
        return False

    for first, length, count in equal_runs(start, points):
        boundaries = _Boundaries(first, length, at_point, clock)
        model.fit(model.pipeline(population_data, first, first + length * count), epochs=count,
                  steps_per_epoch=length, verbose=0,
                  callbacks=list(callbacks) + ([clock.callback()] if clock is not None else []) + [boundaries])
        if boundaries.stopped:
            break
        trained = int(model._train_counter.numpy())  # steps this fit ran (Keras counts from 0 in each fit)
        if trained < length * count:
            raise RunError(f"a callback stopped training at step {first + trained} of a level that "
                           f"ends at step {end}: a level trains the steps its plan fixes, so a callback given to "
                           "find_ticket must not set model.stop_training (EarlyStopping, TerminateOnNaN); the run "
                           "keeps every finished unit and resumes without it.")
    wall = (time.perf_counter() - began) / model.units
    for result in results:
        result.wall_time_s = wall
    return results


def equal_runs(start: int, points: list) -> list[tuple[int, int, int]]:
    """The segments [start, p0), [p0, p1), ... as runs of consecutive equal lengths: (first step, length, count)."""
    runs, position = [], start
    for point in points:
        length = point - position
        if runs and runs[-1][1] == length:
            runs[-1][2] += 1
        else:
            runs.append([position, length, 1])
        position = point
    return [tuple(r) for r in runs]


def _Boundaries(first: int, length: int, at_point, clock):
    """A Keras callback for one `fit` of equal segments: after epoch e, `at_point(first + (e + 1) * length,
    logs)`, which may end the fit (its `stopped`)."""
    from tflottery.core.keras_compat import keras

    class Boundaries(keras.callbacks.Callback):
        stopped = False

        def on_epoch_begin(self, epoch, logs=None):
            if clock is not None:
                clock.segment_from(first + epoch * length)

        def on_epoch_end(self, epoch, logs=None):
            if at_point(first + (epoch + 1) * length, logs or {}):
                self.stopped = self.model.stop_training = True

    return Boundaries()


class _Progress:
    """A line at least every PROGRESS_EVERY_S seconds of a long level, also inside one fit call (a level
    evaluated once an epoch may run minutes between evaluations)."""

    def __init__(self, label: str, start: int, end: int, began: float, results: list, units: int):
        self.label, self.start, self.end, self.began, self.results, self.units = label, start, end, began, results, units
        self.printed, self.offset = began, start

    def segment_from(self, position: int) -> None:
        self.offset = position

    def callback(self):
        from tflottery.core.keras_compat import keras

        clock = self

        class Tick(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                clock.maybe_say(clock.offset + batch + 1)

        return Tick()

    def maybe_say(self, step: int) -> None:
        now = time.perf_counter()
        if now - self.printed < PROGRESS_EVERY_S or step <= self.start:
            return
        self.printed, elapsed = now, now - self.began
        accuracy = self.results[0].history[-1].get("test_accuracy") if self.results[0].history else None
        shown = f"test acc {100 * accuracy:.2f}% (last evaluated)  " if accuracy is not None and self.units == 1 else ""
        print(f"[tflottery]   {self.label}step {step}/{self.end}  {shown}{elapsed:.0f}s, about "
              f"{elapsed * (self.end - step) / (step - self.start):.0f}s left in this level", flush=True)


def _writers(log_dirs):
    if not log_dirs:
        return None
    import tensorflow as tf

    return [tf.summary.create_file_writer(d) if d else None for d in log_dirs]


def _log(writer, entry: dict) -> None:
    if writer is None:
        return
    import tensorflow as tf

    with writer.as_default(step=entry["step"]):
        for k, v in entry.items():
            if k != "step":
                tf.summary.scalar(k, v)
