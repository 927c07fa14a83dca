"""What the benchmarks share: the 55,000-example Fashion-MNIST training set (or the MNIST sample tiled to it), and
recipes timed in fresh processes, today's or tflottery 0.2's (checked out from this clone's history)."""
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tflottery import data as data_lib
from tflottery.config import DataConfig


def load_data():
    try:
        data = data_lib.load(DataConfig(dataset="fashion_mnist", source="idx"), batch_size=60)
    except Exception:  # no Debian files: tile the embedded MNIST sample up to 55,000 examples
        data = data_lib.load(DataConfig(dataset="mnist", validation=0), batch_size=60)
        data.__dict__.pop("train_tensors", None)
        x, y = data.arrays["train"]
        reps = -(-55000 // len(y))
        data.arrays["train"] = (np.tile(x, (reps, 1, 1, 1))[:55000], np.tile(y, reps)[:55000])
    assert data.num_train == 55000 and data.steps_per_epoch == 916
    return data


ROOT = Path(__file__).resolve().parent.parent
RELEASE_0_2 = "d3ee56c"  # the last commit of 0.2 on main, before the 0.3 round's first ("Engine shape II")


def checkout(commit: str, where: Path) -> Path:
    """`commit`'s files in `where` (a plain copy: no work tree registered in the clone)."""
    try:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
    except subprocess.CalledProcessError as error:
        sys.exit(f"{Path(sys.argv[0]).name}: this clone lacks commit {commit} ({error.stderr.decode().strip()}): "
                 "clone with history (not --depth 1) or pass --release.")
    where.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def time_recipe(code: Path, recipe: str, flags: list, scratch: Path) -> float:
    """Seconds of `python -m tflottery.recipes.<recipe>` with the tflottery in `code`, quiet, writing under `scratch`."""
    scratch.mkdir(parents=True)
    env = {**os.environ, "TFLOTTERY_OFFLINE": "1", "PYTHONPATH": str(code)}
    command = [sys.executable, "-m", f"tflottery.recipes.{recipe}", f"--runs_dir={scratch / 'runs'}",
               f"--tickets_dir={scratch / 'tickets'}", "--verbose=False", *flags]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(command)} in {code} failed:\n{done.stderr[-3000:]}")
    return seconds


def against_0_2(recipe: str, release: str, flags: list, one_at_a_time: list, rounds: int) -> dict:
    """{"0.2", "today", "today_1": [seconds per round]}: `recipe` with `flags` by 0.2's code at `release` (a
    temporary checkout), by today's, and by today's with `one_at_a_time` added, interleaved in `rounds`."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f"tflottery-{recipe}-") as tmp:
        tmp = Path(tmp)
        commands = {"0.2": (checkout(release, tmp / "release"), flags), "today": (ROOT, flags),
                    "today_1": (ROOT, flags + one_at_a_time)}
        times = {name: [] for name in commands}
        for r in range(rounds):
            for name, (code, command_flags) in commands.items():
                times[name].append(time_recipe(code, recipe, command_flags, tmp / f"{name}-{r}"))
                print(f"round {r + 1}: {name:8s} {times[name][-1]:6.1f} s", flush=True)
    return times
