"""How one fit lays out IMP: level 0 trains T steps; each later level trains T - k, rewound to step k.

TensorFlow-free arithmetic shared by tf_keras's `IMPSchedule` and Keras 3's `Keras3IMP`.
"""
from __future__ import annotations

from dataclasses import dataclass

from tflottery.core.errors import ConfigError


@dataclass(frozen=True)
class LevelLayout:
    level_steps: int
    levels: int
    rewind_step: int = 0

    def __post_init__(self):
        for name, low in (("level_steps", 1), ("levels", 0), ("rewind_step", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"IMP layout {name}={value!r} must be an integer >= {low}.")
        if self.rewind_step >= self.level_steps:
            raise ConfigError(f"IMP layout rewind_step={self.rewind_step} must be before the end of a level "
                              f"(level_steps={self.level_steps}): pruned levels train from it to the end.")

    @property
    def pruned_steps(self) -> int:
        """Steps of each pruned level: from the rewind step to the end."""
        return self.level_steps - self.rewind_step

    def level_start(self, level: int) -> int:
        """Steps trained before `level` begins."""
        return 0 if level == 0 else self.level_steps + (level - 1) * self.pruned_steps

    def total_steps(self) -> int:
        """The length of the whole fit: every level."""
        return self.level_start(self.levels + 1)

    def level_of(self, done: int) -> int:
        """The level of the step that follows `done` steps."""
        if done < self.level_steps:
            return 0
        return 1 + (done - self.level_steps) // self.pruned_steps
