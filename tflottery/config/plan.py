"""How far a run goes: levels, branches, replicates. Never part of a run's identity.

Asking for more of any of them extends the same run directory: more levels train only the
new levels, another branch trains only that branch on the finished levels, more replicates
train only the new replicates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from tflottery.config.fields import check_types, in_range, setting, unhashed
from tflottery.core.errors import ConfigError
from tflottery.core.steps import Step

DEFAULT_LEVELS = 5
MAX_LEVELS = 200
MAX_REPLICATES = 1000


@dataclass(slots=True)
class PlanConfig:
    levels: Optional[int] = setting(None, "pruning levels after the dense level 0 (default 5) ...")
    target_remaining: Optional[float] = setting(None, "... or the fewest levels reaching this fraction of weights")
    branches: list[Any] = setting(help="per-level baselines: names or {name: {params}}, e.g. "
                                       "'[\"reinit\", {\"supermask\": {\"init\": \"init\"}}]'",
                                  factory=lambda: ["reinit"])
    replicates: int = setting(1, "independent replicates 0..N-1 (each derives its own seeds)")
    capture: list[str] = setting(help="dense-run steps to keep for instability analysis, e.g. ['100it', '2ep']",
                                 factory=list)
    baseline_levels: Optional[list[int]] = setting(None, "the pruned levels at which the baselines train (default: "
                                                         "every one), e.g. [7, 12, 15]")
    population: Any = unhashed("auto", "units trained as one program: auto, a number, or 1 (one at a time)")

    def validate(self) -> None:
        check_types(self, "plan")
        if self.levels is not None and self.target_remaining is not None:
            raise ConfigError(f"plan: give levels ({self.levels}) or target_remaining ({self.target_remaining}), "
                              "not both.")
        if self.levels is not None and not 0 <= self.levels <= MAX_LEVELS:
            raise ConfigError(f"plan.levels={self.levels} must lie in [0, {MAX_LEVELS}]: level 0 is the dense network.")
        in_range("plan.target_remaining", self.target_remaining, 0.0, 1.0, low_open=True, high_open=True,
                 hint="the fraction of prunable weights left, e.g. 0.036.")
        if not 1 <= self.replicates <= MAX_REPLICATES:
            raise ConfigError(f"plan.replicates={self.replicates} must lie in [1, {MAX_REPLICATES}].")
        for entry in self.branches:
            if not (isinstance(entry, str) or (isinstance(entry, dict) and len(entry) == 1
                                               and isinstance(next(iter(entry)), str))):
                raise ConfigError(f"plan.branches entry {entry!r} must be a branch name or {{name: {{params}}}}, "
                                  "e.g. \"reinit\" or {\"supermask\": {\"init\": \"init\"}}.")
        if self.baseline_levels is not None and not all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_LEVELS for v in self.baseline_levels):
            raise ConfigError(f"plan.baseline_levels={self.baseline_levels!r} must list pruned levels, e.g. [7, 12, 15] "
                              "(level 0 is the dense network: it has no baselines).")
        for step in self.capture:
            Step.parse(step, "plan.capture")
        if not (self.population == "auto" or (isinstance(self.population, int) and not isinstance(self.population, bool)
                                               and 1 <= self.population <= 4096)):
            raise ConfigError(f"plan.population={self.population!r} must be auto or a number of units in [1, 4096] "
                              "(1 trains one unit at a time).")

    @property
    def fixed_levels(self) -> Optional[int]:
        """The levels asked for directly (None when derived from target_remaining)."""
        if self.target_remaining is not None:
            return None
        return DEFAULT_LEVELS if self.levels is None else self.levels
