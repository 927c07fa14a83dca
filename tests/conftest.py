import os

os.environ["TFLOTTERY_OFFLINE"] = "1"  # never probe the network from tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tflottery  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS first)
from tflottery.config import DataConfig, RunConfig  # noqa: E402


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty directory so runs/ and saved_tickets/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def sample_data():
    """The embedded 5,000-digit MNIST sample, batch 50: tiny and real."""
    from tflottery.data import load

    return load(DataConfig(dataset="mnist", validation=400), batch_size=50)


def tiny_config(levels=2, branches=(), replicates=1, target_remaining=None, jit=False, **pruning) -> RunConfig:
    """LeNet-300-100 on the MNIST sample, 30 steps per level, evaluated every 15.

    XLA is off (compiling costs more than 30 steps save) except where a test asks for the
    default, as the resume and exact-zeros tests do.
    """
    return RunConfig.from_dict({
        "data": {"dataset": "mnist", "validation": 400},
        "pruning": pruning,
        "plan": {"levels": levels, "branches": list(branches), "replicates": replicates,
                 "target_remaining": target_remaining},
        "training": {"steps": "30it", "eval_every": "15it", "batch_size": 50, "verbose": False, "jit_compile": jit,
                     "steps_per_execution": 5},
    })


def zeros_outside(weights: dict, masks: dict) -> bool:
    return all(np.all(weights[k][~m] == 0) for k, m in masks.items())


def run_files(path) -> dict:
    """{relative path: bytes} of every file of a run directory (lock excluded)."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != ".lock" and "tensorboard" not in p.parts}


def export_tiny_ticket(where, data, levels: int):
    """Find a tiny LeNet-300-100 ticket under `where` and export its last level."""
    from tflottery import export_ticket
    from tflottery.engine.imp import find_ticket

    config = tiny_config(levels=levels)
    config.runs_dir = str(where / "runs")
    run = find_ticket(config, data=data)
    return export_ticket(run, levels, where / "ticket"), run
