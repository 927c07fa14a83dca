"""How far a run goes: levels, branches, replicates. Never part of a run's identity.

Asking for more of any of them extends the same run directory: more levels train only the
new levels, another branch trains only that branch on the finished levels, more replicates
train only the new replicates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from tflottery.config.fields import check_types, in_range
from tflottery.config.steps import Step
from tflottery.errors import ConfigError

DEFAULT_LEVELS = 5
MAX_LEVELS = 200


@dataclass
class PlanConfig:
    levels: Optional[int] = None  # pruning levels after the dense level 0 (default 5) ...
    target_remaining: Optional[float] = None  # ... or the fewest levels reaching this fraction of weights
    branches: list[str] = field(default_factory=lambda: ["reinit"])  # per-level baselines: reinit, random_prune
    replicates: int = 1  # independent replicates 0..N-1 (each derives its own seeds)
    capture: list[str] = field(default_factory=list)  # dense-run steps to keep for instability analysis, e.g. ['100it', '2ep']

    def validate(self) -> None:
        from tflottery.engine.branches import check_level_branches

        check_types(self, "plan")
        if self.levels is not None and self.target_remaining is not None:
            raise ConfigError(f"plan: give levels ({self.levels}) or target_remaining ({self.target_remaining}), "
                              "not both.")
        if self.levels is not None and not 0 <= self.levels <= MAX_LEVELS:
            raise ConfigError(f"plan.levels={self.levels} must lie in [0, {MAX_LEVELS}]: level 0 is the dense network.")
        in_range("plan.target_remaining", self.target_remaining, 0.0, 1.0, low_open=True, high_open=True,
                 hint="the fraction of prunable weights left, e.g. 0.036.")
        if not 1 <= self.replicates <= 1000:
            raise ConfigError(f"plan.replicates={self.replicates} must lie in [1, 1000].")
        check_level_branches(self.branches)
        for step in self.capture:
            Step.parse(step, "plan.capture")

    @property
    def fixed_levels(self) -> Optional[int]:
        """The levels asked for directly (None when derived from target_remaining)."""
        if self.target_remaining is not None:
            return None
        return DEFAULT_LEVELS if self.levels is None else self.levels
