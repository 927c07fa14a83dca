"""The base of data sources: where a named dataset's raw arrays come from.

A source kind declares its `name`, a `description`, whether `source="auto"` tries it (`auto`, in
registry order), `offline(dataset, data_dir, manual_dir)` (where it has the dataset without a
network: a short text, or None), `available(...)` (it can deliver now; `auto` may probe the
network), `read(...)` (the raw uint8 images and int32 labels of train and test, and the text
every result records as the data's source) and `unavailable(...)`, the one-line error naming
the fix when asked for by name and it has nothing; `auto_note`, a fact logged once when `auto`
falls back to it.
"""
from __future__ import annotations

from typing import ClassVar, Optional


class Source:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    auto: ClassVar[bool] = True  # tried by source="auto", in registry order
    auto_note: ClassVar[str] = ""  # logged once per process when source="auto" falls back to it

    def offline(self, dataset: str, data_dir: Optional[str], manual_dir: Optional[str]) -> Optional[str]:
        return None

    def available(self, dataset: str, data_dir: Optional[str], manual_dir: Optional[str]) -> bool:
        return self.offline(dataset, data_dir, manual_dir) is not None

    def read(self, dataset: str, data_dir: Optional[str], manual_dir: Optional[str]) -> tuple:
        """((x_train, y_train), (x_test, y_test), source text): uint8 NHWC images, int32 labels."""
        raise NotImplementedError

    def unavailable(self, dataset: str, elsewhere: str) -> str:
        """The error when asked for by name with nothing to give; `elsewhere` says how to get the dataset at all."""
        return f"source={self.name!r} has no copy of {dataset}. {elsewhere}"
