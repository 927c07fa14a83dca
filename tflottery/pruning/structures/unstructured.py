"""Weight by weight: the default, Frankle & Carbin's IMP."""
from __future__ import annotations

from dataclasses import dataclass

from tflottery.pruning.structures.base import Structure


class Unstructured(Structure):
    kind = "unstructured"
    example = {}  # a pruning.structure that chooses it (its contract tests use it)
    description = "weight by weight"

    @dataclass
    class Settings:
        pass
