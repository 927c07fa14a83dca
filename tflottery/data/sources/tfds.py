"""TensorFlow Datasets: a copy prepared in --data_dir (or $TFDS_DATA_DIR), or downloaded when online."""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery.data.catalog import DATASETS, TEXT
from tflottery.data.sources.base import Source


def online(timeout: float = 2.0) -> bool:
    """Can TFDS's download hosts be reached? Never hangs; TFLOTTERY_OFFLINE=1 skips the probe."""
    if os.environ.get("TFLOTTERY_OFFLINE") == "1":
        return False
    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _tfds():
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.utils import gcs_utils

    gcs_utils._is_gcs_disabled = True  # never probe Google Cloud Storage (hangs offline)
    return tfds


def byte_ids(texts, length: int) -> np.ndarray:
    """Texts as token ids of fixed `length`: each UTF-8 byte + 1 (0 pads), cut at `length` bytes. No vocabulary
    file to ship or trust, and every text maps; `text_encoder`'s default vocabulary (257) covers it."""
    out = np.zeros((len(texts), length), np.int32)
    for row, text in enumerate(texts):
        data = np.frombuffer(text if isinstance(text, bytes) else str(text).encode(), np.uint8)[:length]
        out[row, :len(data)] = data.astype(np.int32) + 1
    return out


def prepared(name: str, data_dir: Optional[str]) -> bool:
    root = Path(data_dir or os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets").expanduser()
    if not list(root.glob(f"{name}/*/dataset_info.json")):
        return False  # asking TFDS would only log a warning about a folder that does not exist
    try:
        return _tfds().builder(name, data_dir=data_dir).is_prepared()
    except Exception:  # noqa: BLE001 — an unknown or broken builder is simply "not prepared"
        return False


class TfdsSource(Source):
    name = "tfds"
    description = "TensorFlow Datasets, prepared in --data_dir or downloaded when online"

    def offline(self, dataset, data_dir, manual_dir):
        return "tfds (prepared)" if prepared(TEXT.get(dataset, (dataset,))[0], data_dir) else None

    def available(self, dataset, data_dir, manual_dir):
        return prepared(TEXT.get(dataset, (dataset,))[0], data_dir) or online()

    def read(self, dataset, data_dir, manual_dir):
        tfds = _tfds()
        name, test = TEXT.get(dataset, (dataset, "test"))
        builder = tfds.builder(name, data_dir=data_dir)
        if not builder.is_prepared():
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))

        def arrays(split):
            if dataset in TEXT:  # glue/sst2 has no as_supervised pairs: its features by name
                batch = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
                texts = batch["sentence"] if "sentence" in batch else batch["text"]
                return byte_ids(texts, DATASETS[dataset][0][0]), np.asarray(batch["label"], np.int32)
            batch = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
            return batch[0].astype(np.uint8), batch[1].astype(np.int32)

        return arrays("train"), arrays(test), "tfds" + (" (UTF-8 bytes + 1 as token ids)" if dataset in TEXT else "")

    def unavailable(self, dataset, elsewhere):
        return elsewhere
