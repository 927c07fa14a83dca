"""Transfers in a run's work queue: a `tflottery transfer` request recorded so that every process training the
run (`tflottery worker`, `find`, other transfers) trains its units, each once.

A request is plain data: {"levels": {"<replicate>": [levels]}, "branches": [Transfer parameters]}. Queue
files are untrusted input (a shared folder): each is checked whole, before anything trains.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from tflottery.core.errors import ConfigError, RunError
from tflottery.engine.branches import Transfer
from tflottery.engine.context import RunSetup, load_target


def request_of(levels: dict, branches: list) -> dict:
    return {"levels": {str(r): sorted(chosen) for r, chosen in sorted(levels.items())},
            "branches": [dataclasses.asdict(b.params) for b in branches]}


def parse(store, path: Path, request) -> tuple[dict, list]:
    """(replicate -> levels, Transfer branches) of one queued request, or a RunError naming the file and the fix."""
    def bad(why: str) -> RunError:
        return RunError(f"{path}: not a transfer request of this run ({why}): delete it and request the transfer "
                        "again with `tflottery transfer`.")

    if not isinstance(request, dict) or set(request) != {"levels", "branches"}:
        raise bad("it must hold exactly 'levels' and 'branches'")
    levels, params = request["levels"], request["branches"]
    if not isinstance(levels, dict) or not levels or not isinstance(params, list) or not params:
        raise bad("'levels' must map replicates to levels and 'branches' list Transfer parameters")
    wanted = {}
    for key, chosen in levels.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) in store.replicates()):
            raise bad(f"no replicate {key!r}")
        done = store.replicate(int(key)).levels()
        if not isinstance(chosen, list) or not chosen or any(type(v) is not int or v not in done for v in chosen):
            raise bad(f"replicate {key}'s levels {chosen!r} are not all finished levels {done}")
        wanted[int(key)] = chosen
    if not all(isinstance(p, dict) for p in params):
        raise bad("each branch must be a mapping of Transfer parameters")
    try:
        branches = [Transfer(p) for p in params]
    except ConfigError as error:
        raise bad(str(error)) from None
    if len({(repr(b.params.data), repr(b.params.training)) for b in branches}) != 1:
        raise bad("its branches name different targets")
    return wanted, branches


def queued(store, pending_only: bool = True) -> list[tuple[dict, list]]:
    """Every transfer in the run's queue (with units left, if `pending_only`): (replicate -> levels, branches),
    all checked first."""
    requests = [parse(store, path, request) for path, request in store.queued_transfers()]
    return [(levels, branches) for levels, branches in requests
            if not pending_only or any(not store.replicate(r).is_done(level, b.key())
                   for r, chosen in levels.items() for level in chosen for b in branches)]


def target_of(setup: RunSetup, branches: list) -> tuple:
    """(data config, training config, Data, TrainingConfig) of the branches' target, loaded once per setup."""
    data, training = branches[0].params.data, branches[0].params.training
    return (data, training, *load_target(setup.targets, data, training, setup.config.runs_dir))
