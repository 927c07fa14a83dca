"""Generated tensors of a dataset's shape, for testing models where no real data can be had (CIFAR offline).
Never science: only when asked for by name."""
from __future__ import annotations

import numpy as np

from tflottery.data.catalog import DATASETS, SPLIT_SEED
from tflottery.data.sources.base import Source


def synthetic(name: str, n_train: int = 1500, n_test: int = 300):
    """Learnable generated images of the dataset's shape: one random template per class plus noise."""
    shape, num_classes, _ = DATASETS[name]
    rng = np.random.default_rng(SPLIT_SEED)
    templates = rng.uniform(0, 255, (num_classes, *shape))

    def draw(n):
        y = rng.integers(0, num_classes, n).astype(np.int32)
        x = 0.6 * templates[y] + rng.uniform(0, 0.4 * 255, (n, *shape))
        return x.astype(np.uint8), y

    return draw(n_train), draw(n_test)


class SyntheticSource(Source):
    name = "synthetic"
    description = "generated tensors of the dataset's shape (for tests, not science)"
    auto = False

    def available(self, dataset, data_dir, manual_dir):
        return True

    def read(self, dataset, data_dir, manual_dir):
        return (*synthetic(dataset), "synthetic (generated tensors; for tests, not science)")
