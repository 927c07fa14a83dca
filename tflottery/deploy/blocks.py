"""TFLite's block kernels: which masks they can run, checked before converting."""
from __future__ import annotations

from tflottery.core.errors import ConversionError

BLOCKS = {"block_float": 4, "block_int8": 16}  # the inputs per block of TFLite's sparse kernels (1x4, 1x16)
ERROR_PREFIX = "ConversionError: "  # how the conversion subprocess reports a user error


def block_inputs(mask) -> int:
    """The most consecutive inputs (1, 2, 4, 8 or 16) whose mask entries agree for every output: the
    ticket's block width in TFLite's [out, in] layout (a Keras kernel is [in, out])."""
    import numpy as np

    mask = np.asarray(mask)
    if mask.ndim != 2:
        return 1
    for width in (16, 8, 4, 2):
        rows = mask.shape[0]
        if rows % width == 0:
            groups = mask.reshape(rows // width, width, -1)
            if (groups == groups[:, :1, :]).all():
                return width
    return 1


def check_blocks(masks: dict, width: int, mode: str) -> dict:
    """The block width of each mask; a ticket with no layer in blocks of `width` inputs is refused."""
    widths = {k: block_inputs(m) for k, m in masks.items()}
    if not any(w >= width and w % width == 0 for w in widths.values()):
        found = ", ".join(f"{k.split('/')[0]} 1x{w}" for k, w in widths.items())
        raise ConversionError(f"Mode {mode} runs TFLite's 1x{width} sparse kernel, but this ticket's masks are not made "
                              f"of 1x{width} blocks in any layer ({found}). Find a block ticket: tflottery find "
                              f"--strategy=block --block_shape='[1,{width}]'.")
    return widths
