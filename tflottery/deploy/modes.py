"""TFLite modes, one registered kind each: what the converter does for it and what it checks first.

A mode declares its `name`, a `description` and how it converts: `sparse` (EXPERIMENTAL_SPARSITY, the
sparse tensor encoding), `int8` (full-integer quantization), `calibrated` (ranges from a representative
set; a quantization-aware model carries its own), `block` (the inputs per block of the LiteRT kernel it
is for: the ticket's masks must be made of such blocks, checked before any work) and `prepare` (the model
it converts, from the ticket's plain model). Adding a mode: a subclass here and a `register` line.
"""
from __future__ import annotations

from typing import ClassVar, Optional


class Mode:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    sparse: ClassVar[bool] = True
    int8: ClassVar[bool] = False
    calibrated: ClassVar[bool] = False
    block: ClassVar[Optional[int]] = None  # inputs per block of its LiteRT kernel (1x4 float, 1x16 int8)
    trains: ClassVar[bool] = False  # fine-tunes before converting (needs training data and steps)

    def prepare(self, plain, masks: dict, train, steps: int):
        """The Keras model this mode converts."""
        return plain


class Float(Mode):
    name = "float"
    description = "dense float32, the reference"
    sparse = False


class Sparse(Mode):
    name = "sparse"
    description = "float32 with the sparse tensor encoding (a small file)"


class Int8(Mode):
    name = "int8"
    description = "full-integer quantization calibrated on the ticket's own data, sparse encoding where it runs"
    int8 = calibrated = True


class Int8Qat(Mode):
    name = "int8_qat"
    description = "prune-preserving quantization-aware fine-tuning, then int8"
    int8 = trains = True

    def prepare(self, plain, masks, train, steps):
        from tflottery.deploy.finetune import prune_preserving_qat

        return prune_preserving_qat(plain, masks, train, steps)


class BlockFloat(Mode):
    name = "block_float"
    description = "float32 for LiteRT's 1x4 block-sparse FULLY_CONNECTED kernel (a block ticket)"
    block = 4


class BlockInt8(Mode):
    name = "block_int8"
    description = "int8 for LiteRT's 1x16 block-sparse FULLY_CONNECTED kernel (a block ticket)"
    int8 = calibrated = True
    block = 16


MODES: dict[str, Mode] = {}


def register(cls: type) -> type:
    MODES[cls.name] = cls()
    return cls


for _cls in (Float, Sparse, Int8, Int8Qat, BlockFloat, BlockInt8):
    register(_cls)


def block_modes() -> list[str]:
    return [name for name, mode in MODES.items() if mode.block]
