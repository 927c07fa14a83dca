"""Helpers of the tests: a tiny run's configuration, run files, a tiny ticket."""
import numpy as np

from tflottery.config import RunConfig


def tiny_config(levels=2, branches=(), replicates=1, target_remaining=None, jit=False, population=1,
                **pruning) -> RunConfig:
    """LeNet-300-100 on the MNIST sample, 30 steps per level, evaluated every 15.

    XLA is off (compiling costs more than 30 steps save) except where a test asks for the
    default, as the resume and exact-zeros tests do.
    """
    return RunConfig.from_dict({
        "data": {"dataset": "mnist", "validation": 400},
        "pruning": pruning,
        "plan": {"levels": levels, "branches": list(branches), "replicates": replicates,
                 "target_remaining": target_remaining, "population": population},
        "training": {"steps": "30it", "eval_every": "15it", "batch_size": 50, "verbose": False, "jit_compile": jit,
                     "steps_per_execution": 5},
    })


def zeros_outside(weights: dict, masks: dict) -> bool:
    return all(np.all(weights[k][~m] == 0) for k, m in masks.items())


def run_files(path) -> dict:
    """{relative path: bytes} of every file of a run directory (lock, TensorBoard logs and the
    results table, which holds wall times, excluded)."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name not in (".lock", "results.csv") and "tensorboard" not in p.parts}


def export_tiny_ticket(where, data, levels: int):
    """Find a tiny LeNet-300-100 ticket under `where` and export its last level."""
    from tflottery import export_ticket, find_ticket

    config = tiny_config(levels=levels)
    config.runs_dir = str(where / "runs")
    run = find_ticket(config, data=data)
    return export_ticket(run, levels, where / "ticket"), run
