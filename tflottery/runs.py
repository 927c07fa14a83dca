"""Run directories, atomic writes and level records (open_lth's layout).

    runs/<model>-<dataset>-<hash>/
        config.json  model.json  data.json  [rewind_point.npz]
        level_<L>/                       the ticket's level L
            masks.npz  start.npz  final.npz  metrics.json  history.csv
            reinit/ random_prune/        the baselines at the same level, same files

A level is finished when its `metrics.json` exists: it is written last, and every file is
written to a temporary name and renamed into place, so a run killed at any moment resumes
at the first unfinished level and never reads a half-written file.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

MAIN = "ticket"


# --------------------------------------------------------------------------- atomic writes
def atomic_write(path: "str | Path", data: bytes) -> Path:
    """Write bytes to `path` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path, obj) -> Path:
    return atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n").encode())


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


def write_npz(path, arrays: dict) -> Path:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k.replace("/", "__"): np.asarray(v) for k, v in arrays.items()})
    return atomic_write(path, buffer.getvalue())


def read_npz(path) -> dict:
    """Arrays from an npz file, never unpickling anything."""
    with np.load(path, allow_pickle=False) as f:
        return {k.replace("__", "/"): f[k] for k in f.files}


def write_csv(path, rows: list[dict]) -> Path:
    buffer = io.StringIO()
    fields = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write(path, buffer.getvalue().encode())


@contextmanager
def atomic_directory(target: "str | Path"):
    """Yield a temporary directory that replaces `target` whole when the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --------------------------------------------------------------------------- levels
@dataclass
class LevelRecord:
    masks: dict
    start: dict
    final: dict
    metrics: dict


class RunDir:
    """One IMP run on disk."""

    def __init__(self, path: "str | Path"):
        self.path = Path(path)

    def level_dir(self, level: int, branch: str = MAIN) -> Path:
        base = self.path / f"level_{level}"
        return base if branch == MAIN else base / branch

    def is_done(self, level: int, branch: str = MAIN) -> bool:
        return (self.level_dir(level, branch) / "metrics.json").exists()

    def save_level(self, level: int, branch: str, record: LevelRecord) -> None:
        d = self.level_dir(level, branch)
        write_npz(d / "masks.npz", record.masks)
        write_npz(d / "start.npz", record.start)
        write_npz(d / "final.npz", record.final)
        write_csv(d / "history.csv", record.metrics["history"])
        write_json(d / "metrics.json", record.metrics)  # last: marks the level finished

    def load_level(self, level: int, branch: str = MAIN) -> LevelRecord:
        d = self.level_dir(level, branch)
        return LevelRecord(read_npz(d / "masks.npz"), read_npz(d / "start.npz"), read_npz(d / "final.npz"),
                           read_json(d / "metrics.json"))

    def metrics(self, level: int, branch: str = MAIN) -> Optional[dict]:
        return read_json(self.level_dir(level, branch) / "metrics.json") if self.is_done(level, branch) else None

    def levels(self) -> list[int]:
        found = [int(p.name.split("_")[1]) for p in self.path.glob("level_*") if p.name.split("_")[1].isdigit()]
        return sorted(level for level in found if self.is_done(level))

    def summary(self) -> list[dict]:
        """One row per finished level and branch: the table every plot and report reads."""
        rows = []
        for level in self.levels():
            for branch in [MAIN] + sorted(p.name for p in self.level_dir(level).iterdir() if p.is_dir()):
                m = self.metrics(level, branch)
                if m:
                    rows.append({k: m[k] for k in ("level", "branch", "remaining", "early_stop_step",
                                                   "early_stop_test_accuracy", "final_test_accuracy",
                                                   "final_test_loss", "wall_time_s")})
        return rows
