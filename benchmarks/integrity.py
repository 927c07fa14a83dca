"""What checking a run's units against their manifests costs at the start of a process, per unit.

Trains a LeNet-300-100 run on the MNIST sample (2 replicates, 3 levels, the reinit control: 14 units),
then, as a fresh process would (the in-process cache cleared), times `RunStore.damaged()` three ways:
`full` (every file hashed: `tflottery verify`), `stamps` (the writer's stamps in .units/verified/: a
stat per file), and `no stamps` (0.4 before stamps: every file hashed once per process), with the bytes
each reads. Run: python benchmarks/integrity.py [--repeat 20]
"""
import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main(repeat: int) -> None:
    from helpers import tiny_config
    from tflottery import find_ticket
    from tflottery.engine import store as store_lib

    where = Path(tempfile.mkdtemp(prefix="integrity-"))
    try:
        config = tiny_config(levels=3, branches=["reinit"], replicates=2, population=6)
        config.runs_dir = str(where / "runs")
        run = find_ticket(config)
        units = sum(len(run.store.replicate(r).branches(lv)) for r in run.store.replicates()
                    for lv in run.store.replicate(r).level_numbers())
        size = sum(p.stat().st_size for p in run.path.rglob("replicate_*/level_*/*/*") if p.is_file())
        print(f"{units} units, {size / units / 1e6:.2f} MB of files per unit")
        read = {"bytes": 0}
        real = store_lib.read_bytes

        def counting(path, *args, **kwargs):
            data = real(path, *args, **kwargs)
            read["bytes"] += len(data)
            return data

        store_lib.read_bytes = counting
        stamps = where / "runs" / run.path.name / ".units" / "verified"
        for label, full, keep in (("full (verify)", True, True), ("stamps", False, True), ("no stamps", False, False)):
            if not keep:
                shutil.rmtree(stamps, ignore_errors=True)
            times = []
            read["bytes"] = 0
            for _ in range(repeat):
                store_lib._VERIFIED.clear()
                start = time.perf_counter()
                assert store_lib.RunStore(run.path).damaged(full=full) == []
                times.append(time.perf_counter() - start)
            best = min(times)
            print(f"{label:<14} {1e3 * best / units:7.3f} ms per unit (best of {repeat}), "
                  f"{read['bytes'] / repeat / units / 1e6:6.3f} MB read per unit")
    finally:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    main(parser.parse_args().repeat)
