"""The scheduler: how many units train as one program, and which ready units go together.

`population_size` turns `--population` (auto, a number, 1) into a number of units: auto takes
the most units that fit a quarter of this machine's memory and the device's sweet spot (the
benchmark `benchmarks/population_speed.py` measures it), and says why in the start banner.
`groups` puts ready units that share a group key (architecture, data, training, step range)
into groups of at most that many.
"""
from __future__ import annotations

import os

CPU_AUTO = 6  # units per program on a CPU: on 2 cores, each tower in a loop of its own, 2 to 15 LeNets train at
# 0.40-0.58 of one alone per unit, 10-15 a little faster than 5 (benchmarks/population_speed.py); a program of 15
# takes 9 s to build and trace against 2.6 s for one of 5, which three groups of 5 share
GPU_AUTO = 64
BYTES_PER_WEIGHT = 4 * 6  # weight, mask, gradient, two Adam slots and a copy in flight, float32


def population_size(value, weights: int, distributed: bool = False) -> "tuple[int, str]":
    """(units per program, why) for `--population=value` on this machine, `weights` per unit."""
    if distributed:
        return 1, "1 (tf.distribute trains one unit at a time)"
    if value != "auto":
        return int(value), f"{int(value)} (as asked)"
    import tensorflow as tf

    gpu = bool(tf.config.list_physical_devices("GPU"))
    device = GPU_AUTO if gpu else CPU_AUTO
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 << 30
    fits = max(1, memory // 4 // max(1, weights * BYTES_PER_WEIGHT))
    size = int(min(device, fits))
    return size, f"auto: {size} ({'GPU' if gpu else 'CPU'} up to {device}, memory for {fits})"


def groups(units: list, size: int) -> list[list]:
    """Units in groups of at most `size` that share a group key, in the units' order, split evenly (15
    units at most 6 apart: 5, 5, 5, one program size to compile instead of 6, 6, 3)."""
    by_key: dict = {}
    for unit in units:
        by_key.setdefault(unit.group_key(), []).append(unit)
    out = []
    for members in by_key.values():
        count = -(-len(members) // size)
        bounds = [round(i * len(members) / count) for i in range(count + 1)]
        out += [members[a:b] for a, b in zip(bounds, bounds[1:])]
    return out
