"""A user's own data: arrays of any numeric kind (images, token ids, tabular features) as a run's `Data`.

`from_arrays(train=(x, y), test=(x, y))` checks the arrays (one line per problem, before any
work), holds out a validation set from the training set with the catalogue's fixed split seed
(as every registered dataset does), and names the data by a digest of its bytes: the run's
identity holds it, so other arrays make another run and the same arrays find the same run after a
restart. Inputs are cast to float32 and divided by `rescale` (255 for uint8 arrays, as images;
1 otherwise: features as they are, token ids exact up to 2**24, which an `Embedding` casts back
to integers). A run made from them stores one copy (`<run>/arrays/<digest>.npz`, written once), so
that workers, `transfer`, `instability` and a restart without the arrays read them back, checked
against the digest before use: a run directory others share is untrusted input. (`tflottery.data.
from_arrays` builds the Data; this module checks, splits, stores and reads back the arrays.)
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery.core.errors import ConfigError, DamagedError, DataUnavailableError

TEST_FRACTION = 0.1  # held out of `train` for the test set when no test arrays are given


def check_pair(value, what: str) -> tuple:
    """(x, y) of a split, checked: numeric examples, integer class ids from 0, one label per example, no NaN."""
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ConfigError(f"{what} must be a pair (x, y) of arrays, got {type(value).__name__}.")
    x, y = np.asarray(value[0]), np.asarray(value[1])
    if x.ndim < 2 or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ConfigError(f"{what}: x must be a numeric array of examples (at least 2 dimensions: examples x "
                          f"features), got dtype {x.dtype} and shape {x.shape}.")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"{what}: y must be a 1-D array of integer class ids, got dtype {y.dtype} and shape "
                          f"{y.shape} (one-hot labels: pass y.argmax(axis=1)).")
    if len(x) != len(y):
        raise ConfigError(f"{what}: x holds {len(x)} examples and y {len(y)} labels: give one label per example.")
    if len(y) and y.min() < 0:
        raise ConfigError(f"{what}: y holds the class id {int(y.min())}: classes are numbered from 0.")
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        raise ConfigError(f"{what}: x holds NaN or infinite values: clean them before training.")
    return x, y.astype(np.int32)


def digest(arrays: dict, rescale: float) -> str:
    """16 hex digits of sha256 over every split's dtypes, shapes and bytes (and the rescale)."""
    h = hashlib.sha256(repr(float(rescale)).encode())
    for split in sorted(arrays):
        for a in arrays[split]:
            h.update(f"{split}|{a.dtype.str}|{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def split(train, test, validation, seed: int, default_count) -> dict:
    """{"train", "test"[, "validation"]: (x, y)} of checked pairs: without `test`, TEST_FRACTION of `train` held out
    for it; `validation` an (x, y) pair, or a count held out of `train` (None: `default_count(len(train))`), all
    with the fixed split `seed`."""
    x_train, y_train = check_pair(train, "train")
    rng = np.random.default_rng(seed)
    if test is None:
        order = rng.permutation(len(y_train))
        cut = int(round(TEST_FRACTION * len(order)))
        (x_test, y_test), (x_train, y_train) = ((x_train[order[:cut]], y_train[order[:cut]]),
                                                (x_train[order[cut:]], y_train[order[cut:]]))
    else:
        x_test, y_test = check_pair(test, "test")
    arrays = {"train": (x_train, y_train), "test": (x_test, y_test)}
    if isinstance(validation, (tuple, list)):
        arrays["validation"] = check_pair(validation, "validation")
    else:
        if validation is not None and (isinstance(validation, bool) or not isinstance(validation, int)
                                       or validation < 0):
            raise ConfigError(f"validation={validation!r} must be a number of examples, 0, or an (x, y) pair.")
        count = default_count(len(y_train)) if validation is None else validation
        if count > len(y_train) // 2:
            raise ConfigError(f"validation={count} would hold out more than half of the {len(y_train)} training "
                              "examples: hold out fewer.")
        order = rng.permutation(len(y_train))
        if count:
            arrays["validation"] = (x_train[order[:count]], y_train[order[:count]])
        arrays["train"] = (x_train[order[count:]], y_train[order[count:]])
    shape = tuple(x_train.shape[1:])
    for name, (x, _) in arrays.items():
        if tuple(x.shape[1:]) != shape:
            raise ConfigError(f"{name}: examples of shape {tuple(x.shape[1:])}, train's are {shape}: give every split "
                              "examples of one shape.")
    return arrays


# --------------------------------------------------------------------------- the copy a run stores
FOLDER = "arrays"  # <run>/arrays/<digest>.npz
_DIGEST = re.compile(r"[0-9a-f]{16}")
_SPLITS = ("train", "test", "validation")
MAX_STORED_BYTES = 1 << 34  # 16 GiB: a copy larger than this is not one tflottery wrote


def stored_name(digest_: str) -> str:
    return f"{digest_}.npz"


def stored_bytes(data) -> bytes:
    """The copy of a Data made from arrays: every split's x and y uncompressed (user data rarely compresses and
    is read back whole), with the name, rescale and class names as a JSON entry; the same arrays, the same bytes."""
    from tflottery.core.files import npz_bytes

    meta = {"name": data.info["dataset"], "rescale": data.divisor, "class_names": list(data.class_names)}
    entries = {f"{split}_{part}": a for split, pair in data.arrays.items() for part, a in zip("xy", pair)}
    entries["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    return npz_bytes(entries, compress=False)


def read_stored(digest_: str, runs: "str | Path | None") -> dict:
    """{arrays, name, rescale, class_names} of the copy of the arrays `digest_` a run in the folder `runs` stores,
    checked: sizes declared before anything is decompressed, no pickles, and the digest of what was read."""
    from tflottery.core.files import read_bytes

    if not _DIGEST.fullmatch(digest_):
        raise ConfigError(f"data.source=arrays:{digest_}: not a digest of arrays (16 hex digits).")
    found = sorted(Path(runs).glob(f"*/{FOLDER}/{stored_name(digest_)}")) if runs is not None else []
    if not found:
        raise DataUnavailableError(f"data.source=arrays:{digest_}: no run in {runs or 'this folder'} holds a copy of "
                                   "these arrays (a run keeps one from tflottery 0.4 on): pass them again, "
                                   "find_ticket(config, data=<the same arrays>), in a process that has them.")
    path = found[0]
    stored = _read(path, read_bytes(path, Path(runs), MAX_STORED_BYTES))
    if digest(stored["arrays"], stored["rescale"]) != digest_:
        raise DamagedError(f"{path} does not hold the arrays arrays:{digest_} (their digest differs): the file was "
                           "altered. Remove it and pass the arrays again, find_ticket(config, data=...).")
    return stored


def _read(path: Path, content: bytes) -> dict:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            entries = {m.filename[:-4]: _entry(archive, m, path) for m in archive.infolist()}
        meta = json.loads(bytes(entries.pop("meta")).decode())
        arrays = {split: (entries.pop(f"{split}_x"), entries.pop(f"{split}_y"))
                  for split in _SPLITS if f"{split}_x" in entries}
        if entries or "train" not in arrays or "test" not in arrays:
            raise ValueError(f"entries {sorted(entries)[:3]} beside the splits, or no train and test")
        rescale, names = float(meta["rescale"]), [str(n) for n in meta["class_names"]]
        return {"arrays": arrays, "name": str(meta["name"]), "rescale": rescale, "class_names": names}
    except DamagedError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, KeyError, TypeError, EOFError, MemoryError) as error:
        raise DamagedError(f"{path} is not a copy of arrays tflottery stored ({type(error).__name__}: "
                           f"{str(error)[:120]}): remove it and pass the arrays again.") from None


def _entry(archive: zipfile.ZipFile, member: zipfile.ZipInfo, path: Path) -> np.ndarray:
    """One array, its header checked against the member's size before any value is read."""
    with archive.open(member) as raw:
        version = np.lib.format.read_magic(raw)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(raw)
        if dtype.hasobject or fortran or not member.filename.endswith(".npy"):
            raise DamagedError(f"{path}: {member.filename[:60]!r} is not an array in C order without objects: refused.")
        if member.file_size != raw.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise DamagedError(f"{path}: {member.filename[:60]!r} declares {shape} values of {dtype.str} that its "
                               f"{member.file_size:,} bytes do not hold: refused.")
    with archive.open(member) as raw:
        return np.lib.format.read_array(raw, allow_pickle=False)
