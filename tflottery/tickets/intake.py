"""A shared ticket taken into a run of its own: `runs/ticket-<digest>/`, named by its content, never by what it says.

So the same ticket always lands in the same place and finds its own results there, and a second
ticket never reads the first one's. The ticket is verified first (`tflottery.tickets.read`).
"""
from __future__ import annotations

from pathlib import Path

from tflottery.core.errors import TicketError
from tflottery.engine.store import TICKET, LevelRecord, RunStore

KEPT_METRICS = ("remaining", "early_stop_step", "early_stop_test_accuracy", "final_test_accuracy", "final_test_loss",
                "wall_time_s", "rewind_step")


def store_for(ticket, runs_dir: "str | Path") -> RunStore:
    return RunStore(Path(runs_dir) / f"ticket-{ticket.digest[:16]}")


def import_ticket(ticket, runs_dir: "str | Path") -> RunStore:
    """Write a verified ticket as level L of its own run (once) and return that run's store."""
    from tflottery.tickets import ticket_config

    store = store_for(ticket, runs_dir)
    store.check_layout()
    level = ticket.meta["level"]
    if store.replicate(0).is_done(level):
        return store
    config = ticket_config(ticket.meta)
    store.lock()
    try:
        store.write_spec({"imported_ticket": ticket.digest})
        store.describe(config.to_dict(), ticket.meta["data"], {}, ticket.architecture)
        found = ticket.meta.get("metrics", {}) if isinstance(ticket.meta.get("metrics"), dict) else {}
        metrics = {k: found[k] for k in KEPT_METRICS
                   if isinstance(found.get(k), (int, float)) and not isinstance(found.get(k), bool)}
        metrics.update(level=level, branch=TICKET, kind=TICKET, replicate=0, remaining=ticket.meta["remaining"]["total"],
                       history=[], imported_from=ticket.digest)
        store.replicate(0).save_level(level, TICKET, LevelRecord(ticket.masks, ticket.rewind, ticket.weights, metrics))
    finally:
        store.unlock()
    return store


def source_of(path: Path, runs_dir: Path, trust_code: bool = False):
    """(store, verified ticket or None) of a run directory or a ticket directory; a ticket's store is
    where it is imported."""
    if (path / "spec.json").exists():
        return RunStore.open(path), None
    if (path / "ticket.json").exists() or (path / "ticket.json").is_symlink():
        from tflottery.tickets import read_ticket

        ticket = read_ticket(path, trust_code)
        return store_for(ticket, runs_dir), ticket
    RunStore(path).check_layout()
    raise TicketError(f"{path} is neither a run directory (spec.json) nor a ticket (ticket.json).")

