"""What convert checks before it converts: block masks for TFLite's kernels, the output folder, a representative set."""
from __future__ import annotations

import math

import os
from pathlib import Path
from typing import Optional

from tflottery.core.errors import ConfigError, ConversionError

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


def divisor_of(meta: dict) -> float:
    """What a ticket's inputs were divided by in training (its data's recorded rescale, "1/255" or "1/1")."""
    rescale = str(((meta.get("data") or {}).get("preprocessing") or {}).get("rescale", "1/255"))
    try:
        value = float(rescale.split("/", 1)[1]) if rescale.startswith("1/") else 255.0
    except ValueError:
        return 255.0
    return value if math.isfinite(value) and value > 0 else 255.0


def representative_arrays(path, shape: tuple, classes: Optional[int] = None, divisor: float = 255.0):
    """(x float, divided by `divisor` as in training; y or None) of a representative .npz, checked: at least one
    input of the ticket's shape (uint8 images for the registered datasets; any numbers for a ticket of your own
    arrays), and labels (if given) one per input within the ticket's classes."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f.files:
                raise ConversionError(f"{path} has no array 'x' (uint8 images, NHWC).")
            x, y = f["x"], (f["y"] if "y" in f.files else None)
    except (ValueError, OSError, EOFError) as error:
        raise ConversionError(f"{path} is not an .npz of arrays ({str(error)[:120]}).") from None
    images = divisor == 255.0
    if (x.dtype != np.uint8 if images else x.dtype.kind not in "iuf") or x.ndim != len(shape) + 1 \
            or tuple(x.shape[1:]) != tuple(shape) or not len(x) or not np.all(np.isfinite(x)):
        raise ConversionError(f"{path}: x must hold at least one " + (f"uint8 image of shape {tuple(shape)} (NHWC, like "
                              "the ticket's data)" if images else f"input of shape {tuple(shape)} in finite numbers, "
                              "as your arrays hold them") + f", not {x.dtype} of shape {tuple(x.shape)}.")
    if y is not None:
        if y.shape != (len(x),) or y.dtype.kind not in "iu" or (classes and (y.min() < 0 or y.max() >= classes)):
            raise ConversionError(f"{path}: y must hold one integer label per image of x"
                                  + (f", each in 0..{classes - 1}." if classes else "."))
        y = y.astype(np.int64)
    return x.astype(np.float32) / np.float32(divisor), y


def check_output(ticket: Path, out: Optional[Path]) -> None:
    """Where the files go: the ticket's own tflite/, or a writable folder that is neither inside a ticket
    nor a run; checked before anything is converted."""
    if out is None:
        return
    out_resolved, own = out.resolve(), (ticket / "tflite").resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out={str(out)!r} is a file: name a folder for the .tflite files.")
    if out_resolved == own:
        return
    for folder in [out_resolved, *out_resolved.parents]:
        if (folder / "ticket.json").is_file():
            where = "the ticket itself" if folder == ticket.resolve() else f"another ticket ({folder})"
            raise ConfigError(f"out={str(out)!r} lies inside {where}, whose files are checksummed: leave --out unset "
                              "(files go to <ticket>/tflite/) or name a folder outside every ticket.")
        if (folder / "spec.json").is_file():
            raise ConfigError(f"out={str(out)!r} lies inside the run {folder}: name a folder outside it.")
    existing = next(p for p in [out_resolved, *out_resolved.parents] if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"out={str(out)!r}: {existing} is not writable here: name a folder you can write.")
