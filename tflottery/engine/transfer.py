"""Transfer: retrain a ticket on other data, labels or optimizer, as branches of its level.

From a run directory, the branches live beside the ticket: `replicate_<r>/level_<L>/transfer-<hash>/`.
From a shared ticket directory, the ticket is first imported into a run named by its content
digest, `runs/ticket-<digest>/`, so the same ticket always lands in the same place (whatever
its ticket.json claims about where it came from) and a second ticket never reads the
first one's results.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tflottery import data as data_lib
from tflottery.config import DataConfig, RunConfig, TrainingConfig, build
from tflottery.engine.branches import Transfer
from tflottery.engine.distribute import precision_policy
from tflottery.engine.imp import Replicate, plan_run
from tflottery.engine import progress as progress_lib
from tflottery.engine.store import TICKET, LAYOUT, LevelRecord, RunStore
from tflottery.errors import ConfigError, TicketError
from tflottery.files import write_csv, write_json


@dataclass
class TransferResult:
    """Where a transfer's branches are, and their numbers."""

    store: RunStore
    replicate: int
    level: int
    branches: dict  # init ("rewind" | "reinit") -> branch key
    trained: list

    @property
    def path(self) -> Path:
        return self.store.path

    def metrics(self, init: str = "rewind") -> dict:
        return self.store.replicate(self.replicate).metrics(self.level, self.branches[init])

    def record(self, init: str = "rewind") -> LevelRecord:
        return self.store.replicate(self.replicate).load_level(self.level, self.branches[init])

    def summary(self) -> list[dict]:
        keys = set(self.branches.values())
        return [r for r in self.store.replicate(self.replicate).summary() if r["level"] == self.level
                and r["branch"] in keys]


def transfer(source: "str | Path", data: "DataConfig | dict", training: "TrainingConfig | dict | None" = None, *,
             level: Optional[int] = None, replicate: int = 0, reinit: bool = True, seed: int = 0,
             runs_dir: "str | Path" = "runs", trust_code: bool = False, callbacks: tuple = ()) -> TransferResult:
    """Retrain a ticket on `data` with `training` (fields not given: the ticket's own training).

    `source` is a run directory (then `level`, default its last, and `replicate` choose the
    ticket) or a ticket directory. Trains the ticket from its rewind weights and, with
    `reinit`, the same mask from a fresh initialisation; a finished branch is not trained again.
    """
    data_cfg = build(DataConfig, data, "data")
    data_cfg.validate()
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 31:
        raise ConfigError(f"seed={seed!r} must be an integer in [0, 2**31).")
    store, config, ticket_level, ticket = _source(Path(source), Path(runs_dir), trust_code, replicate)
    train_cfg = build(TrainingConfig, {**dataclasses.asdict(config.training),
                                       **(dataclasses.asdict(training) if isinstance(training, TrainingConfig)
                                          else training or {})}, "training")
    train_cfg.validate()
    if ticket is not None:
        store = _import(ticket, store, config)
    level = ticket_level if level is None else level
    rep_store = store.replicate(replicate)
    if isinstance(level, bool) or not isinstance(level, int) or level not in rep_store.levels():
        raise TicketError(f"Level {level!r} of {rep_store.path} is not finished; finished levels: {rep_store.levels()}.")
    from tflottery.keras_compat import keras

    base = keras.models.model_from_json((store.path / "model.json").read_text())
    source_data = data_lib.load(config.data, config.training.batch_size)
    target_data = data_lib.load(data_cfg, train_cfg.batch_size)
    if tuple(base.input_shape[1:]) != tuple(target_data.input_shape):
        raise TicketError(f"The ticket takes inputs of shape {tuple(base.input_shape[1:])} but {data_cfg.dataset} "
                          f"has {tuple(target_data.input_shape)}: transfer needs the same input shape.")
    target = (json.loads(json.dumps(dataclasses.asdict(data_cfg))), json.loads(json.dumps(dataclasses.asdict(train_cfg))))
    branches = {init: Transfer(*target, init=init, seed=seed) for init in (("rewind", "reinit") if reinit else ("rewind",))}
    store.lock()
    try:
        with precision_policy(train_cfg.precision):
            try:
                plan = plan_run(config, base, source_data.steps_per_epoch)
            except ConfigError as error:
                raise TicketError(f"{store.path}: the ticket's recorded configuration cannot be used ({error})") from None
            rep = Replicate(config, rep_store, source_data, base, plan, None, callbacks,
                            progress_lib.current(train_cfg.verbose))
            rep.add_target(*target, target_data, train_cfg)
            rep.progress.begin(sum(rep.steps_of(train_cfg, target_data) for b in branches.values()
                                   if not rep_store.is_done(level, b.key())))
            for branch in branches.values():
                rep.train(level, branch)
        write_csv(store.path / "results.csv", store.summary())
    finally:
        store.unlock()
    return TransferResult(store, replicate, level, {k: b.key() for k, b in branches.items()}, rep.trained)


def _source(path: Path, runs_dir: Path, trust_code: bool, replicate: int):
    """(store, its RunConfig, the default level, the verified ticket or None) of a run or a ticket directory.

    A ticket's store is where it will be imported: named by its content digest, never by what
    ticket.json says.
    """
    if (path / "spec.json").exists():
        store = RunStore.open(path)
        config = RunConfig.from_dict(store.config())
        levels = store.replicate(replicate).levels()
        return store, config, levels[-1] if levels else None, None
    if (path / "ticket.json").exists() or (path / "ticket.json").is_symlink():
        from tflottery.tickets import read_ticket, ticket_config

        ticket = read_ticket(path, trust_code)
        store = RunStore(runs_dir / f"ticket-{ticket.digest[:16]}")
        return store, ticket_config(ticket.meta), ticket.meta["level"], ticket
    RunStore(path).check_layout()
    raise TicketError(f"{path} is neither a run directory (spec.json) nor a ticket (ticket.json).")


def _import(ticket, store: RunStore, config: RunConfig) -> RunStore:
    """Write a verified shared ticket as level L of its own run (once)."""
    store.check_layout()
    rep = store.replicate(0)
    level = ticket.meta["level"]
    if rep.is_done(level):
        return store
    store.lock()
    try:
        write_json(store.path / "spec.json", {"layout": LAYOUT, "name": store.name,
                                              "identity": {"imported_ticket": ticket.digest}})
        write_json(store.path / "config.json", config.to_dict())
        write_json(store.path / "model.json", json.loads(ticket.architecture))
        write_json(store.path / "data.json", ticket.meta["data"])
        keep = ("remaining", "early_stop_step", "early_stop_test_accuracy", "final_test_accuracy", "final_test_loss",
                "wall_time_s", "rewind_step")
        found = ticket.meta.get("metrics", {}) if isinstance(ticket.meta.get("metrics"), dict) else {}
        metrics = {k: found[k] for k in keep if isinstance(found.get(k), (int, float)) and not isinstance(found.get(k), bool)}
        metrics.update(level=level, branch=TICKET, kind=TICKET, replicate=0, remaining=ticket.meta["remaining"]["total"],
                       history=[], imported_from=ticket.digest)
        rep.save_level(level, TICKET, LevelRecord(ticket.masks, ticket.rewind, ticket.weights, metrics))
    finally:
        store.unlock()
    return store
