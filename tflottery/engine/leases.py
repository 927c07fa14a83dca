"""Leases on units: a holder that stops renewing loses its units to the others, and its late results are refused.

A process holds each unit it trains by a lock (`RunStore.claim`) that the kernel drops when the
process dies. A process that is alive but stuck (SIGSTOP, a hung device, a node cut off whose
file-system client keeps its locks) would hold them for ever, so every holder also renews a lease:
a thread rewrites its line in each held unit's lock file every `lease / 10` seconds (`beat_s`),
flushed to the file's server. A process that sees a unit's line unchanged for `lease` seconds of
its own clock (no clocks are compared across machines) takes the unit over
(`DirectoryLock.take_over`) and trains it. The late holder, should it wake, checks before it
writes a file of the unit and again before its commit that the lock file is still its own
(`fence`): it is not, so its results are dropped with one line. Training is deterministic, so
even a write that slipped between that check and the commit would be the same bytes.

The lease (`--lease`, default 300 s) must be longer than the file system's own recovery of a dead
client's locks (an NFSv4 server's lease is 90 s by default; Lustre evicts an unresponsive client
after about 1.5 x obd_timeout, 150 s by default): a holder that died is then seen by its lock,
dropped by the server, and the lease acts only on holders that are alive but stuck.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Optional

from tflottery.core.errors import ConfigError, RunError

LEASE_S = 300.0
TRIES = 2  # times a unit may fail before it is marked failed and skipped
WAIT_S = 3600.0  # how long a process waits, with nothing it can take, for units other processes hold


class LeaseLost(RunError):
    """This process's lease on a unit was taken over by another process: its results are not written."""


@dataclass
class Sharing:
    """How a process shares a run with others: `wait` seconds without progress before it gives up, `lease`
    seconds a holder may go without renewing, `tries` failures before a unit is marked failed, `retry_failed`
    (clear failed marks first), `announce` (say which units each claim holds)."""

    wait: float = WAIT_S
    lease: float = LEASE_S
    tries: int = TRIES
    retry_failed: bool = False
    announce: bool = False

    def check(self) -> "Sharing":
        for name, low in (("wait", 0.0), ("lease", 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < float("inf"):
                raise ConfigError(f"--{name}={value!r}: give seconds, at least {low:g} (e.g. --{name}="
                                  f"{WAIT_S if name == 'wait' else LEASE_S:g}).")
        if isinstance(self.tries, bool) or not isinstance(self.tries, int) or not 1 <= self.tries <= 100:
            raise ConfigError(f"--tries={self.tries!r}: give how many times a unit may fail before it is marked "
                              f"failed, from 1 to 100 (default {TRIES}).")
        return self

    @property
    def beat_s(self) -> float:
        return self.lease / 10


class Leases:
    """The units this process holds (renewed by a heartbeat thread) and what it saw of the units others hold."""

    def __init__(self, store, lease: float = LEASE_S):
        self.store, self.lease = store, float(lease)
        self.held: dict = {}  # unit name -> its DirectoryLock
        self.seen: dict = {}  # unit name -> (holder's line, when this process first saw it)
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="tflottery-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease / 10):
            with self._mutex:
                for lock in self.held.values():
                    lock.renew()

    def hold(self, name: str, lock) -> None:
        with self._mutex:
            self.held[name] = lock
        self.seen.pop(name, None)

    def release(self, name: str) -> None:
        with self._mutex:
            lock = self.held.pop(name, None)
            if lock is not None:
                lock.release()

    def owns(self, name: str) -> bool:
        lock = self.held.get(name)
        return lock is not None and lock.owns()

    def fence(self, name: str):
        """A check for the store to call before it writes the unit: a LeaseLost unless this process still holds it."""
        def check() -> None:
            if not self.owns(name):
                raise LeaseLost(f"unit {name}: another process took it over after this one did not renew its lease "
                                f"for {self.lease:g} s (--lease); this process's result of it is dropped.")
        return check

    def probe(self, name: str) -> Optional[str]:
        """None if no one holds unit `name`; else its holder's line, remembered to time the holder's lease."""
        line = self.store.unit_lock(name).holder()
        if line is None:
            self.seen.pop(name, None)
        elif self.seen.get(name, (None,))[0] != line:
            self.seen[name] = (line, time.monotonic())
        return line

    def expired(self, name: str) -> bool:
        """Whether the holder of `name` has not renewed its lease for `lease` seconds, as this process saw it."""
        line, since = self.seen.get(name, (None, 0.0))
        return line is not None and time.monotonic() - since > self.lease

    def take_over(self, name: str):
        """The unit's lock, taken from a holder whose lease expired (one warning line), or None."""
        if not self.expired(name):
            return None
        line, lock = self.seen[name][0], self.store.unit_lock(name)
        if not lock.take_over(line):
            return None
        logging.getLogger("tflottery").warning("unit %s: its holder (%s) did not renew its lease for %g s (--lease); "
                                               "this process takes it over", name, line, self.lease)
        self.seen.pop(name, None)
        return lock

    def close(self) -> None:
        self._stop.set()
        for name in list(self.held):
            self.release(name)
