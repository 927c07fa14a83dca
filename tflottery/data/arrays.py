"""A user's own data: arrays of any numeric kind (images, token ids, tabular features) as a run's `Data`.

`from_arrays(train=(x, y), test=(x, y))` checks the arrays (one line per problem, before any
work), holds out a validation set from the training set with the catalogue's fixed split seed
(as every registered dataset does), and names the data by a digest of its bytes: the run's
identity holds it, so other arrays make another run and the same arrays find the same run after a
restart. Inputs are cast to float32 and divided by `rescale` (255 for uint8 arrays, as images;
1 otherwise: features as they are, token ids exact up to 2**24, which an `Embedding` casts back
to integers). The arrays stay in the process that passed them: a run made from them is resumed
or extended by `find_ticket(config, data=<the same arrays>)`; workers and commands that load data
by name refuse it in one line. (`tflottery.data.from_arrays` builds the Data; this module checks and
splits the arrays.)
"""
from __future__ import annotations

import hashlib
from typing import Optional

import numpy as np

from tflottery.core.errors import ConfigError

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
