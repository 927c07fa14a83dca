"""The one seed function: every random choice of a run derives its seed from what it is for.

`derive_seed(seed, replicate, level, branch, purpose)` hashes the run seed and the path of
the choice (SHA-256, first 31 bits). Seeds never depend on the order in which things were
trained or on any global random state, so any branch of any level can be reproduced alone,
and a resumed run is bit-identical to one that was never interrupted.

Purposes used by the engine: "init" (model initialisation of a replicate, or a fresh
initialisation for a branch), "data_order" (the batch order of one level of one branch),
"mask" (a random mask), "head" (a new output layer in transfer).
"""
from __future__ import annotations

import hashlib
import json
from typing import Optional


def derive_seed(seed: int, replicate: int = 0, level: Optional[int] = None, branch: Optional[str] = None,
                purpose: str = "init", *extra) -> int:
    """A seed in [0, 2**31) for one purpose at one place of a run."""
    key = json.dumps([int(seed), int(replicate), level, branch, purpose, *map(str, extra)])
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") & 0x7FFFFFFF
