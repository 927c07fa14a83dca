"""Branches: what trains at a level of a run, one registered class per kind, each in its own file.

The ticket itself is a branch (`ticket`), and so are its baselines (`reinit`, `random_prune`,
`supermask`; pruning at initialisation: `snip`, `grasp`, `synflow`, `magnitude_init`, with the
ablations of `scored.py`, and `ticket_ablation`; dynamic sparse training: `set`, `rigl`), its retraining on another task (`transfer`) and the copies of an instability
analysis (`copy`). The level loop (`tflottery.engine.loop`) trains every branch through the same
hooks and stores it under `replicate_<r>/level_<L>/<branch key>/`.

Adding a branch kind: subclass `Branch` in a file of its own (`kind`, `description`, a `Params`
dataclass, `start`, and the `train`/`metrics` hooks where it needs them) and `register` it here.
With `per_level = True` it can be named in `--branches` (with parameters: `{"name": {...}}`).
"""
from tflottery.core.names import TICKET
from tflottery.engine.branches.base import Branch, BranchStart
from tflottery.engine.branches.copy import Copy
from tflottery.engine.branches.grasp import Grasp
from tflottery.engine.branches.magnitude_init import MagnitudeInit
from tflottery.engine.branches.random_prune import RandomPrune
from tflottery.engine.branches.reinit import Reinit
from tflottery.engine.branches.rigl import Rigl
from tflottery.engine.branches.set import Set
from tflottery.engine.branches.snip import Snip
from tflottery.engine.branches.supermask import Supermask
from tflottery.engine.branches.synflow import Synflow
from tflottery.engine.branches.ticket import Ticket
from tflottery.engine.branches.ticket_ablation import TicketAblation
from tflottery.engine.branches.transfer import Transfer

BRANCHES: dict[str, type] = {}


def register(cls: type) -> type:
    BRANCHES[cls.kind] = cls
    return cls


for _cls in (Ticket, Reinit, RandomPrune, Transfer, Copy, Supermask, Snip, Grasp, Synflow, MagnitudeInit, TicketAblation,
             Set, Rigl):
    register(_cls)


def level_branch_kinds() -> list[str]:
    return [k for k, cls in BRANCHES.items() if cls.per_level]


def kind_of(key: str) -> "type | None":
    """The branch class of a stored branch key ('reinit', 'transfer-8111eb2e7c'); None for an unregistered kind."""
    return BRANCHES.get(key.split("-")[0])


def controls() -> tuple:
    """The kinds a ticket must beat to be called one (Frankle & Carbin's: reinit and random pruning)."""
    return tuple(k for k, cls in BRANCHES.items() if cls.control)


__all__ = ["BRANCHES", "TICKET", "Branch", "BranchStart", "Copy", "RandomPrune", "Reinit", "Supermask", "Ticket",
           "Transfer", "controls", "kind_of", "level_branch_kinds", "register"]
