"""Training lengths written as `500it`, `2ep` or `1ep100it` (open_lth's notation)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from tflottery.core.errors import ConfigError

_STEP_RE = re.compile(r"^\s*(?:(\d+)\s*ep)?\s*(?:(\d+)\s*it)?\s*$")


@dataclass(frozen=True)
class Step:
    """A point in training: whole epochs plus iterations, resolved to steps with `to_steps`."""

    epochs: int = 0
    iterations: int = 0

    @classmethod
    def parse(cls, text: "str | int | Step", name: str = "step") -> "Step":
        if isinstance(text, Step):
            return text
        if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
            return cls(0, text)
        match = _STEP_RE.match(text) if isinstance(text, str) else None
        if not match or not (match.group(1) or match.group(2)):
            raise ConfigError(f"{name}={text!r} is not a step: write iterations and/or epochs as "
                              "'500it', '2ep' or '1ep100it'.")
        return cls(int(match.group(1) or 0), int(match.group(2) or 0))

    def to_steps(self, steps_per_epoch: int) -> int:
        return self.epochs * steps_per_epoch + self.iterations

    def __str__(self) -> str:
        parts = (f"{self.epochs}ep" if self.epochs else "") + (f"{self.iterations}it" if self.iterations else "")
        return parts or "0it"
