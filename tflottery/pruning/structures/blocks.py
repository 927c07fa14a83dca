"""Whole blocks of TFLite's weight layout, the units its sparse FULLY_CONNECTED kernels skip.

`block` [r, c] is given in TFLite's layout: a FULLY_CONNECTED weight is [out, in], so [1, 4]
is 4 consecutive inputs of one output: rows 4i..4i+3 of one column of the Keras [in, out]
kernel. A block's score is its mean magnitude; every mask is made of whole blocks at every
level. Convolutions have no sparse kernel in TFLite: they are pruned weight by weight (the plan
says so), as are layers named in `unstructured`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from tflottery.config import setting
from tflottery.core.errors import ConfigError
from tflottery.core.names import layer_of, selected
from tflottery.pruning.structures.base import Structure


def kernel_warning(block: list) -> Optional[str]:
    """Why blocks of `block` ([out, in] in TFLite) will not run faster in LiteRT, or None if they can."""
    rows, cols = block
    if rows == 1 and cols % 4 == 0:
        return None
    return (f"TFLite has sparse FULLY_CONNECTED kernels for 1x4 blocks (float) and 1x16 (int8), none for "
            f"{rows}x{cols}: these blocks will be stored sparsely but computed densely, with no speed-up.")


class Blocks(Structure):
    kind = "blocks"
    example = {"block": [1, 4]}  # a pruning.structure that chooses it (its contract tests use it)
    keys = {"block"}
    description = "whole blocks of TFLite's [out, in] weights (1x4 float, 1x16 int8 kernels)"

    @dataclass
    class Settings:
        block: list[int] = setting(factory=lambda: [1, 4], help="[rows, cols] of TFLite's [out, in] weights")
        unstructured: list[str] = field(default_factory=list, metadata={"help": "layers pruned weight by weight"})

    @classmethod
    def check_settings(cls, settings) -> None:
        shape = settings.block
        if len(shape) != 2 or min(shape) < 1:
            raise ConfigError(f"pruning.structure block={shape} must be two positive sizes [rows, cols] of TFLite's "
                              "[out, in] weights, e.g. [1, 4] (float) or [1, 16] (int8).")

    def __init__(self, settings, kinds: dict, shapes: dict, pruned: list):
        super().__init__(settings, kinds, shapes, pruned)
        rows, cols = settings.block
        self.block = (int(cols), int(rows))  # (inputs, outputs) in the Keras kernel
        for name in settings.unstructured:
            if not selected(kinds, [name]):
                raise ConfigError(f"pruning.structure unstructured: no prunable layer named {name!r}; prunable layers: "
                                  f"{', '.join(dict.fromkeys(layer_of(k) for k in kinds))}.")
        loose = set(selected(kinds, settings.unstructured))
        self.blocked = [k for k in pruned if kinds[k] == "dense" and len(shapes[k]) == 2 and k not in loose]
        for k in self.blocked:
            n_in, n_out = shapes[k]
            if n_in % self.block[0] or n_out % self.block[1]:
                raise ConfigError(
                    f"pruning.structure block={list(settings.block)} does not divide layer {layer_of(k)} ({n_out} outputs "
                    f"x {n_in} inputs in TFLite's layout): choose a block that divides it, or prune that layer weight by "
                    f"weight with \"unstructured\": [\"{layer_of(k)}\"].")
        self.kernel_warning = kernel_warning(list(settings.block))

    @classmethod
    def deploy_note(cls, settings) -> "tuple[str, str] | None":
        block = list(settings.block)
        warning = kernel_warning(block)
        return (f"in {block[0]}x{block[1]} blocks. ", warning) if warning else None

    def identify(self, identity: dict, strategy: str) -> dict:
        named = {"layerwise": "block", "global": "block_global"}.get(strategy, f"{strategy}+blocks")
        out = {**identity, "strategy": named, "block": list(self.block)}
        if strategy != "global":
            out["unstructured"] = sorted(k for k in self.pruned if k not in self.blocked)
        return out

    def unit(self, k: str) -> int:
        return self.block[0] * self.block[1] if k in self.blocked else 1

    def units(self, k, weights, mask):
        if k not in self.blocked:
            return weights, mask
        r, c = self.block
        rows, cols = weights.shape
        scores = np.abs(weights).reshape(rows // r, r, cols // c, c).mean(axis=(1, 3))
        return scores, mask.reshape(rows // r, r, cols // c, c).all(axis=(1, 3))

    def expand(self, k, unit_mask):
        if k not in self.blocked:
            return unit_mask
        return np.repeat(np.repeat(unit_mask, self.block[0], axis=0), self.block[1], axis=1)

    def holds(self, k, mask):
        if k not in self.blocked:
            return True
        _, alive = self.units(k, np.zeros(mask.shape), mask)
        return bool(np.array_equal(self.expand(k, alive), mask))

    def note(self) -> str:
        loose = [layer_of(k) for k in self.pruned if k not in self.blocked]
        r, c = self.block
        text = f"blocks of {c}x{r} (TFLite [out, in]) in {', '.join(layer_of(k) for k in self.blocked) or 'no layer'}"
        return text + (f"; weight by weight in {', '.join(loose)}" if loose else "")
