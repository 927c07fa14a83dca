"""Hyperparameter sweeps over IMP with keras-tuner: its oracles, its distributed mode, our trial.

`IMPTuner.run_trial` runs `find_ticket` with the trial's values (any config flag: dense_rate,
conv_rate, strategy, rewind, lr, batch_size, ...) and reports one objective:
  * `accuracy_at`: test accuracy at early stop of the level closest to `target_remaining`;
  * `sparsest_within`: 1 - weights remaining of the sparsest level whose accuracy is within
    `tolerance` (0.5 points) of the dense level 0.
Runs land in the usual run directories, so `tflottery plot` compares trials. keras-tuner's
stock `run_trial` rejects tf_keras models, hence the override.

Many machines: keras-tuner's own distributed mode. Start the same `tflottery tune` command on
each machine with KERASTUNER_TUNER_ID=chief (one process: the oracle server) or tuner0,
tuner1, ..., and KERASTUNER_ORACLE_IP / KERASTUNER_ORACLE_PORT naming the chief.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Optional

import keras_tuner
import numpy as np

from tflottery.config import RunConfig, apply_flag
from tflottery.core.names import TICKET
from tflottery.core.errors import ConfigError, RunError

OBJECTIVES = ("accuracy_at", "sparsest_within")
DEFAULT_SPACE = {"dense_rate": [0.2, 0.35, 0.5], "lr": [3e-4, 1.2e-3, 3e-3]}


def _mean_over_replicates(summary: list[dict]) -> list[dict]:
    levels = sorted({r["level"] for r in summary if r["branch"] == TICKET})
    out = []
    for level in levels:
        at = [r for r in summary if r["branch"] == TICKET and r["level"] == level]
        out.append({"level": level, "remaining": float(np.mean([r["remaining"] for r in at])),
                    "early_stop_test_accuracy": float(np.mean([r["early_stop_test_accuracy"] for r in at]))})
    return out


def score(summary: list[dict], objective: str, target_remaining: float = 0.2, tolerance: float = 0.005) -> float:
    """The objective from a run's summary rows (the ticket branch, averaged over replicates)."""
    rows = _mean_over_replicates(summary)
    if objective == "accuracy_at":
        return min(rows, key=lambda r: (abs(r["remaining"] - target_remaining), r["level"]))["early_stop_test_accuracy"]
    if objective == "sparsest_within":
        dense = next(r for r in rows if r["level"] == 0)["early_stop_test_accuracy"]
        good = [r["remaining"] for r in rows if r["early_stop_test_accuracy"] >= dense - tolerance]
        return 1.0 - min(good)
    raise ConfigError(f"Unknown objective {objective!r}: use one of {', '.join(OBJECTIVES)}.")


def _declare(hp, name: str, spec):
    """A list is a choice; a dict {"min", "max", "log"} or a tuple (low, high[, "log"]) a float range."""
    if isinstance(spec, dict):
        return hp.Float(name, float(spec["min"]), float(spec["max"]), sampling="log" if spec.get("log") else "linear")
    if isinstance(spec, tuple):
        return hp.Float(name, float(spec[0]), float(spec[1]), sampling="log" if "log" in spec[2:] else "linear")
    if isinstance(spec, list):
        return hp.Choice(name, spec)
    return hp.Fixed(name, spec)


class IMPTuner(keras_tuner.Tuner):
    """A keras-tuner Tuner whose trial is one IMP run; works with every keras-tuner oracle."""

    def __init__(self, oracle, base: RunConfig, space: dict, objective: str = "accuracy_at",
                 target_remaining: float = 0.2, tolerance: float = 0.005, **kwargs):
        super().__init__(oracle=oracle, **kwargs)
        self.base, self.space, self.objective_name = base, space, objective
        self.target_remaining, self.tolerance = target_remaining, tolerance
        declared = keras_tuner.HyperParameters()  # the whole space up front: Hyperband and Bayes need it
        for name, spec in space.items():
            _declare(declared, name, spec)
        self.oracle.update_space(declared)

    def trial_config(self, hp) -> RunConfig:
        tree = copy.deepcopy(self.base.to_dict())
        for name, spec in self.space.items():
            apply_flag(tree, name, _declare(hp, name, spec))
        if "tuner/epochs" in hp.values:  # Hyperband's budget: epochs per level
            apply_flag(tree, "steps", f"{int(hp.values['tuner/epochs'])}ep")
        return RunConfig.from_dict(tree).validate()

    def run_trial(self, trial, *args, **kwargs):
        from tflottery.api import find_ticket
        from tflottery.core.files import write_json

        config = self.trial_config(trial.hyperparameters)
        run = find_ticket(config)
        value = score(run.summary(), self.objective_name, self.target_remaining, self.tolerance)
        write_json(Path(self.project_dir) / "trials" / f"{trial.trial_id}.json", {
            "trial": trial.trial_id, "worker": os.environ.get("KERASTUNER_TUNER_ID", "local"),
            "values": trial.hyperparameters.values, "score": value, "run": str(run.path)})
        return {"score": value}


def make_oracle(kind: str, max_trials: int, seed: int = 0, max_epochs: int = 4):
    objective = keras_tuner.Objective("score", direction="max")
    if kind == "random":
        return keras_tuner.oracles.RandomSearchOracle(objective=objective, max_trials=max_trials, seed=seed)
    if kind == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(objective=objective, max_trials=max_trials, seed=seed)
    if kind == "hyperband":
        return keras_tuner.oracles.HyperbandOracle(objective=objective, max_epochs=max_epochs, factor=2, hyperband_iterations=1,
                                                   seed=seed)
    raise ConfigError(f"Unknown oracle {kind!r}: use random, bayesian or hyperband.")


def tune(oracle: str = "random", max_trials: int = 4, objective: str = "accuracy_at", target_remaining: float = 0.2,
         tolerance: float = 0.005, space: Optional[dict] = None, directory: str = "runs/tuning",
         project: str = "imp", max_epochs: int = 4, overwrite: bool = False, **flags) -> dict:
    """Sweep IMP hyperparameters; print and return the best configuration and its score.

    --space: {flag: [choices]} or {flag: {"min": a, "max": b, "log": true}}; default sweeps
      dense_rate, rewind and lr. --oracle: random, bayesian or hyperband (budget: epochs per level).
    Every other flag sets the base configuration (--levels=3 --steps=1ep --dataset=fashion_mnist ...).
    """
    base, space = check_tune_inputs(oracle, max_trials, objective, target_remaining, tolerance, space, max_epochs,
                                    flags)
    tuner = IMPTuner(make_oracle(oracle, max_trials, base.seed, max_epochs), base, space, objective=objective,
                     target_remaining=target_remaining, tolerance=tolerance, directory=directory,
                     project_name=project, overwrite=overwrite)
    tuner.search()
    if os.environ.get("KERASTUNER_TUNER_ID", "chief") != "chief":
        return {"worker": os.environ["KERASTUNER_TUNER_ID"], "done": True}
    completed = [t for t in tuner.oracle.get_best_trials(max_trials) if t.score is not None]
    if not completed:
        raise RunError(f"No trial completed; keras-tuner's logs of each trial are under {directory}/{project}.")
    best = completed[0]
    result = {"best": best.hyperparameters.values, "score": best.score, "objective": objective,
              "trials": len(tuner.oracle.trials)}
    print(f"[tflottery] best of {result['trials']} trials ({objective}): {result['best']} -> {result['score']:.4f}")
    return result


TUNE_OPTIONS = {"oracle", "max_trials", "objective", "target_remaining", "tolerance", "space", "directory", "project",
                "max_epochs", "overwrite"}


def check_tune_inputs(oracle, max_trials, objective, target_remaining, tolerance, space, max_epochs, flags):
    """Every input of a sweep checked before the first trial, each space value tried in a dry run."""
    from tflottery.config import config_from_flags
    from tflottery.config.fields import coerce
    from tflottery.api import plan_ticket

    if oracle not in ("random", "bayesian", "hyperband"):
        raise ConfigError(f"Unknown oracle {oracle!r}: use random, bayesian or hyperband.")
    if objective not in OBJECTIVES:
        raise ConfigError(f"Unknown objective {objective!r}: use one of {', '.join(OBJECTIVES)}.")
    for name, value, low in (("max_trials", max_trials, 1), ("max_epochs", max_epochs, 1)):
        if coerce(value, int, name) < low:
            raise ConfigError(f"{name}={value} must be >= {low}.")
    if not 0 < coerce(target_remaining, float, "target_remaining") <= 1:
        raise ConfigError(f"target_remaining={target_remaining} must lie in (0, 1].")
    if not 0 <= coerce(tolerance, float, "tolerance") < 1:
        raise ConfigError(f"tolerance={tolerance} must lie in [0, 1).")
    base = config_from_flags(flags)
    if not {"branches", "plan.branches"} & set(flags):
        base.plan.branches = []  # the objective reads the ticket only: no baseline is trained for it
    space = DEFAULT_SPACE if space is None else space
    if isinstance(space, str):
        try:
            space = json.loads(space)
        except json.JSONDecodeError:
            raise ConfigError(f"--space={space!r} is not JSON: write e.g. --space='{{\"dense_rate\": [0.2, 0.5]}}'.") from None
    if not isinstance(space, dict) or not space:
        raise ConfigError("--space must map flags to choices, e.g. {\"dense_rate\": [0.2, 0.5], \"lr\": {\"min\": 1e-4, \"max\": 1e-2, \"log\": true}}.")
    for name, spec in space.items():
        if isinstance(spec, dict):
            if set(spec) - {"min", "max", "log"} or not {"min", "max"} <= set(spec):
                raise ConfigError(f"space[{name!r}]={spec}: a range is {{\"min\": a, \"max\": b, \"log\": true|false}}.")
            values = [spec["min"], spec["max"]]
        elif isinstance(spec, list) and spec:
            values = spec
        else:
            raise ConfigError(f"space[{name!r}]={spec!r}: give a non-empty list of choices or a min/max range.")
        for value in values:
            tree = copy.deepcopy(base.to_dict())
            try:
                apply_flag(tree, name, value)
                plan_ticket(RunConfig.from_dict(tree))
            except ConfigError as error:
                raise ConfigError(f"space[{name!r}] value {value!r} cannot run: {error}") from None
    return base, space
