"""MNIST-format IDX files: in --manual_dir, or Debian's dataset-fashion-mnist package for fashion_mnist."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery.core.errors import DataUnavailableError
from tflottery.data.sources.base import Source

DEBIAN_DIRS = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}


def idx_dir(name: str, manual_dir: Optional[str]) -> Optional[Path]:
    for d in ([Path(manual_dir)] if manual_dir else []) + ([DEBIAN_DIRS[name]] if name in DEBIAN_DIRS else []):
        if any((d / f"train-images-idx3-ubyte{ext}").exists() for ext in ("", ".gz")):
            return d
    return None


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a numpy array; images get a channel axis."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        zero, dtype_code, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype_code != 0x08:
            raise DataUnavailableError(f"{path} is not an unsigned-byte IDX file.")
        shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        data = np.frombuffer(f.read(), dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise DataUnavailableError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {data.size}.")
    data = data.reshape(shape)
    return data[..., None] if ndim == 3 else data.astype(np.int32)


def read_idx_dir(d: Path):
    def find(stem):
        for ext in (".gz", ""):
            if (d / (stem + ext)).exists():
                return d / (stem + ext)
        raise DataUnavailableError(f"{d} lacks {stem}(.gz).")

    return ((read_idx(find("train-images-idx3-ubyte")), read_idx(find("train-labels-idx1-ubyte"))),
            (read_idx(find("t10k-images-idx3-ubyte")), read_idx(find("t10k-labels-idx1-ubyte"))))


class IdxSource(Source):
    name = "idx"
    description = "MNIST-format IDX files in --manual_dir (or Debian's dataset-fashion-mnist)"

    def offline(self, dataset, data_dir, manual_dir):
        found = idx_dir(dataset, manual_dir)
        return f"idx ({found})" if found else None

    def read(self, dataset, data_dir, manual_dir):
        found = idx_dir(dataset, manual_dir)
        return (*read_idx_dir(found), f"idx:{found}")

    def unavailable(self, dataset, elsewhere):
        return (f"No IDX files for {dataset}: put train-images-idx3-ubyte.gz etc. in --manual_dir"
                + (" or `apt-get install dataset-fashion-mnist`." if dataset in DEBIAN_DIRS else "."))
