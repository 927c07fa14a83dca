"""Compile and train one level of a (wrapped) model, fast, with evaluation every N steps.

One `fit` call per level, in chunks of `gcd(eval_every, capture step, length)` steps as
Keras "epochs" over an endlessly repeated pipeline, so the shuffle order flows on across
chunks and the compiled step (steps_per_execution, optional XLA) is traced once per model.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from tflottery.config import ConfigError, Step, TrainingConfig
from tflottery.keras_compat import keras


class WarmupPiecewise(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `lr`, then multiply by `gamma` at each milestone step."""

    def __init__(self, lr: float, warmup: int = 0, milestones: tuple = (), gamma: float = 0.1):
        self.lr, self.warmup, self.milestones, self.gamma = float(lr), int(warmup), tuple(int(m) for m in milestones), float(gamma)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        rate = tf.constant(self.lr)
        for m in self.milestones:
            rate = tf.where(step >= m, rate * self.gamma, rate)
        if self.warmup:
            rate = rate * tf.minimum(1.0, (step + 1.0) / self.warmup)
        return rate

    def get_config(self):
        return {"lr": self.lr, "warmup": self.warmup, "milestones": list(self.milestones), "gamma": self.gamma}


def make_strategy(config: TrainingConfig) -> "tf.distribute.Strategy":
    """The tf.distribute strategy a run trains under. Create it before any other TensorFlow op."""
    if config.distribute == "mirrored":
        return tf.distribute.MirroredStrategy()
    if config.distribute == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("training.distribute=multi_worker needs TF_CONFIG naming the cluster and this "
                              "worker's task, e.g. {\"cluster\": {\"worker\": [\"host1:2222\", \"host2:2222\"]}, "
                              "\"task\": {\"type\": \"worker\", \"index\": 0}}.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def worker_index() -> int:
    """This process's index among the workers of TF_CONFIG (0, the chief, when there is none)."""
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return 0 if task.get("type", "worker") == "chief" else int(task.get("index", 0))


@contextmanager
def precision_policy(name: "str | None"):
    """Build models under a mixed-precision policy; weights and masks stay float32, so masks stay exact."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name or "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def make_optimizer(config: TrainingConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    schedule = WarmupPiecewise(
        config.lr, Step.parse(config.warmup).to_steps(steps_per_epoch),
        [Step.parse(m).to_steps(steps_per_epoch) for m in config.milestones], config.gamma)
    decay = config.weight_decay or None
    if config.optimizer == "adam":
        return keras.optimizers.Adam(schedule, weight_decay=decay)
    return keras.optimizers.SGD(schedule, momentum=config.momentum, nesterov=config.nesterov, weight_decay=decay)


def compile_model(model: keras.Model, config: TrainingConfig, steps_per_epoch: int) -> keras.Model:
    jit = config.jit_compile
    if jit and tf.distribute.get_strategy().num_replicas_in_sync > 1 and not tf.config.list_physical_devices("GPU"):
        jit = False  # XLA has no CPU collectives (b/194942685): replicas on CPUs train without it
        logging.getLogger("tflottery").info("XLA off: collectives across CPU replicas are not supported by XLA.")
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        steps_per_execution=config.steps_per_execution,
        jit_compile=jit,
    )
    return model


def reset_optimizer(model: keras.Model) -> None:
    """Zero the optimizer's step counter and slots (momentum, Adam moments): a fresh start per level."""
    for v in model.optimizer.variables:
        v.assign(tf.zeros_like(v))


@dataclass
class LevelResult:
    history: list = field(default_factory=list)  # one dict per evaluation
    captured: Optional[dict] = None  # weights at `capture_at`, if asked
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


PROGRESS_EVERY_S = 30.0


class _Evaluator(keras.callbacks.Callback):
    def __init__(self, chunk, total, eval_every, data, capture_at, get_weights, writer, verbose=False):
        super().__init__()
        self.verbose, self.started, self.last_print = verbose, time.perf_counter(), time.perf_counter()
        self.chunk, self.total, self.eval_every, self.data = chunk, total, eval_every, data
        self.capture_at, self.get_weights, self.writer = capture_at, get_weights, writer
        self.result = LevelResult()

    def evaluate(self, step: int, train_logs: Optional[dict] = None):
        row = {"step": step}
        if train_logs:
            row.update(train_loss=float(train_logs["loss"]), train_accuracy=float(train_logs["accuracy"]))
        for prefix, ds in (("val", self.data.validation), ("test", self.data.test)):
            if ds is not None:
                out = self.model.evaluate(ds, verbose=0, return_dict=True)
                row[f"{prefix}_loss"], row[f"{prefix}_accuracy"] = float(out["loss"]), float(out["accuracy"])
        self.result.history.append(row)
        now = time.perf_counter()
        if self.verbose and step and now - self.last_print >= PROGRESS_EVERY_S:  # long levels say where they are
            self.last_print, elapsed = now, now - self.started
            print(f"[tflottery]   step {step}/{self.total}  test acc {100 * row['test_accuracy']:.2f}%  "
                  f"{elapsed:.0f}s, about {elapsed * (self.total - step) / step:.0f}s left in this level", flush=True)
        if self.writer:
            with self.writer.as_default(step=step):
                for k, v in row.items():
                    if k != "step":
                        tf.summary.scalar(k, v)

    def on_epoch_end(self, epoch, logs=None):
        step = (epoch + 1) * self.chunk
        if step == self.capture_at:
            self.result.captured = self.get_weights(self.model)
        if step % self.eval_every == 0 or step == self.total:
            self.evaluate(step, logs)


def train_level(model: keras.Model, data, config: TrainingConfig, total_steps: int, *, seed: int,
                capture_at: Optional[int] = None, get_weights: Optional[Callable] = None,
                log_dir: Optional[str] = None, callbacks: tuple = ()) -> LevelResult:
    """Train `total_steps` from the model's current weights; evaluate at 0 and every `eval_every` steps.

    `seed` fixes the order of the batches, so a level trains the same whenever it runs.
    """
    spe = data.steps_per_epoch
    eval_every = Step.parse(config.eval_every).to_steps(spe) or total_steps
    if total_steps < 1:
        raise ConfigError(f"training.steps={config.steps} is zero steps: train for at least 1it.")
    chunk = math.gcd(min(eval_every, total_steps), total_steps)
    if capture_at:
        chunk = math.gcd(chunk, capture_at)
    writer = tf.summary.create_file_writer(log_dir) if log_dir else None
    evaluator = _Evaluator(chunk, total_steps, eval_every, data, capture_at, get_weights, writer, config.verbose)
    evaluator.set_model(model)
    start = time.perf_counter()
    evaluator.evaluate(0)
    model.fit(data.train_pipeline(seed), epochs=total_steps // chunk, steps_per_epoch=chunk, verbose=0,
              callbacks=[evaluator, *callbacks])
    evaluator.result.wall_time_s = time.perf_counter() - start
    return evaluator.result


def evaluate_arrays(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy and loss of `model` on uint8 images `x` (the recorded preprocessing applied)."""
    from tflottery.data import eval_pipeline

    out = model.evaluate(eval_pipeline(x, y), verbose=0, return_dict=True)
    return {"loss": float(out["loss"]), "accuracy": float(out["accuracy"])}


def progress_line(m: dict, levels: "int | None" = None, eta_s: "float | None" = None) -> str:
    """One line per trained level: level, weights remaining, accuracy, time, ETA."""
    level = f"{m['level']:>2}" + (f"/{levels}" if levels is not None else "")
    eta = f"  ETA {eta_s / 60:5.1f} min" if eta_s is not None else ""
    return (f"[tflottery] level {level} {m['branch']:<12} {100 * m['remaining']:6.2f}% weights remaining  "
            f"test acc {100 * m['final_test_accuracy']:6.2f}% (early stop {100 * m['early_stop_test_accuracy']:6.2f}% "
            f"@ {m['early_stop_step']}it)  {m['wall_time_s']:6.1f}s{eta}")
