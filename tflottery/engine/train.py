"""Train one level of a (wrapped) model from step `start` to `end`, evaluating as it goes.

The level is cut at every evaluation and capture point into segments, each one `fit` call
over exactly its batches ([a, b) of the level's seeded order): no step is repeated or
skipped, the compiled step (steps_per_execution, optional XLA) is traced once per model,
and evaluation or capture points need no common divisor.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from tflottery.config import Step, TrainingConfig
from tflottery.errors import ConfigError
from tflottery.keras_compat import keras

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


def evaluate(model: keras.Model, data) -> dict:
    """Every compiled metric on the validation (if any) and test sets: val_loss, test_accuracy, ..."""
    row = {}
    for prefix, ds in (("val", data.validation), ("test", data.test)):
        if ds is not None:
            out = model.evaluate(ds, verbose=0, return_dict=True)
            row.update({f"{prefix}_{k}": float(v) for k, v in out.items()})
    return row


def train_level(model: keras.Model, data, config: TrainingConfig, *, start: int, end: int, seed: int,
                captures: "set[int] | tuple" = (), get_weights: Optional[Callable] = None,
                log_dir: Optional[str] = None, callbacks: tuple = (), label: str = "",
                watch: "Optional[tuple[int, Callable[[int], bool]]]" = None) -> LevelResult:
    """Train steps [start, end) of the batch order `seed` defines; evaluate at `start`, every
    `eval_every` steps after it, and at `end`; keep the weights at each step of `captures`.

    `watch` = (every, check): `check(step)` runs every `every` steps and stops the level early
    when it returns True (the level then ends, evaluated, at that step).
    """
    if end <= start:
        raise ConfigError(f"training.steps={config.steps} leaves no step to train after step {start}: train longer.")
    every = Step.parse(config.eval_every).to_steps(data.steps_per_epoch) or (end - start)
    evals = set(range(start + every, end, every)) | {end}
    kept = {c for c in captures if start < c <= end}
    watched = set(range(start + watch[0], end + 1, watch[0])) if watch and watch[0] > 0 else set()
    points = sorted(evals | kept | watched)
    writer = None
    if log_dir:
        import tensorflow as tf

        writer = tf.summary.create_file_writer(log_dir)
    result, began, printed = LevelResult(), time.perf_counter(), time.perf_counter()

    def record(step: int, train_logs: Optional[dict] = None) -> None:
        row = {"step": step}
        if train_logs:
            row.update({f"train_{k}": float(v[-1]) for k, v in train_logs.items()})
        row.update(evaluate(model, data))
        result.history.append(row)
        if writer:
            with writer.as_default(step=step):
                for k, v in row.items():
                    if k != "step":
                        tf.summary.scalar(k, v)

    record(start)
    position = start
    for point in points:
        history = model.fit(data.train_pipeline(seed, point, position), epochs=1, steps_per_epoch=point - position,
                            verbose=0, callbacks=list(callbacks))
        position = point
        if point in kept:
            result.captured[point] = get_weights(model)
        stop = point in watched and watch[1](point)
        if point in evals or stop:
            record(point, history.history)
            if stop:
                break
            now = time.perf_counter()
            if config.verbose and point < end and now - printed >= PROGRESS_EVERY_S:  # long levels say where they are
                printed, elapsed = now, now - began
                accuracy = result.history[-1].get("test_accuracy")
                shown = f"test acc {100 * accuracy:.2f}%  " if accuracy is not None else ""
                print(f"[tflottery]   {label}step {point}/{end}  {shown}{elapsed:.0f}s, about "
                      f"{elapsed * (end - point) / (point - start):.0f}s left in this level", flush=True)
    result.wall_time_s = time.perf_counter() - began
    return result
