"""The base of pruning structures: the unit a mask is made of, and the constraint every mask keeps.

A structure sees one model's prunable kernels ({"<layer>/kernel": shape}). Strategies ask it
how many weights a unit holds (`unit`), the most weights a layer may keep at a pruned level
(`cap`), to apply its constraint to a mask (`constrain`, e.g. N:M: at most n of every m), and
for the units' scores (`units`: mean magnitude of a block) and their expansion back to weights.
"""
from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np

from tflottery.core.errors import ConfigError

STRUCTURES: dict[str, type] = {}


def register(cls: type) -> type:
    STRUCTURES[cls.kind] = cls
    return cls


def structure_kind(spec: "dict | None") -> str:
    """The structure a config's `structure` dict names: its "kind", or the kind whose keys it uses."""
    if not spec:
        return "unstructured"
    if "kind" in spec:
        return spec["kind"]
    matches = [cls.kind for cls in STRUCTURES.values() if cls.keys and cls.keys & set(spec)]
    if len(matches) != 1:
        kinds = "; ".join(f"{cls.kind}: {', '.join(sorted(cls.keys)) or '-'}" for cls in STRUCTURES.values())
        raise ConfigError(f"pruning.structure={spec!r} names no single structure: give \"kind\" or the keys of one "
                          f"({kinds}), e.g. {{\"block\": [1, 4]}} or {{\"n\": 2, \"m\": 4}}.")
    return matches[0]


class Structure:
    """Weight by weight, unless a subclass says otherwise."""

    kind: ClassVar[str]
    strategies: ClassVar[Optional[tuple]] = None  # the strategies it serves (None: every one)
    keys: ClassVar[set] = set()
    description: ClassVar[str] = ""
    example: ClassVar[dict]  # a pruning.structure value that chooses this kind, e.g. {"n": 2, "m": 4}

    def __init__(self, settings, kinds: dict, shapes: dict, pruned: list):
        self.settings, self.kinds, self.shapes, self.pruned = settings, dict(kinds), dict(shapes), list(pruned)

    @classmethod
    def check_settings(cls, settings) -> None:
        """Ranges and shapes of the settings, before any model is seen."""

    @classmethod
    def deploy_note(cls, settings) -> "tuple[str, str] | None":
        """For a ticket found under this structure: (how it is structured, what LiteRT makes of it), or None where
        LiteRT's kernels serve it as they are."""
        return None

    def identify(self, identity: dict, strategy: str) -> dict:
        """The run identity of the strategy under this structure (unstructured adds nothing)."""
        return identity

    def unit(self, k: str) -> int:
        """Weights per pruning unit of layer `k`."""
        return 1

    def cap(self, k: str) -> int:
        """The most weights layer `k` may keep at a pruned level."""
        return int(np.prod(self.shapes[k]))

    def constrain(self, k: str, weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """`mask` made to satisfy the structure (a subset of it), choosing by magnitude."""
        return mask

    def units(self, k: str, weights: np.ndarray, mask: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
        """(score per unit, alive per unit) of layer `k`."""
        return weights, mask

    def expand(self, k: str, unit_mask: np.ndarray) -> np.ndarray:
        """A per-unit mask back to the kernel's shape."""
        return unit_mask

    def bind_graph(self, graph: Optional[dict]) -> None:
        """The model's channel graph (`tflottery.models.channels.graph`), for a structure that follows it."""

    def follow(self, masks: dict) -> dict:
        """A level's masks with what the structure makes follow from them (a removed channel's readers)."""
        return masks

    def shuffled(self, masks: dict, seed: int) -> dict:
        """A random mask of `masks`' counts in this structure's units (the random-pruning baseline)."""
        from tflottery.pruning import masks as mask_lib

        return mask_lib.random_like(masks, seed)

    def holds(self, k: str, mask: np.ndarray) -> bool:
        """Whether `mask` of layer `k` is made of this structure's units (checked on loaded tickets)."""
        return True

    def note(self) -> Optional[str]:
        """A line for the dry-run plan, or None."""
        return None

    kernel_warning: Optional[str] = None
