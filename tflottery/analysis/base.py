"""The base of analyses: what a figure of `tflottery plot` draws from finished runs.

An analysis kind declares its `name`, a `description`, the figure's file `suffix` beside the
main figure, the branch `kinds` it draws (they never appear beside the baselines), and the CLI
`command` that computes its records where `find` does not (`instability`); `figures` draws
from the runs' stores and returns the files written, none when the runs hold nothing for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional


@dataclass
class Runs:
    """Runs drawn together: their stores, the names their legends give them (what differs between
    their flags), and each run's per-level rows (`RunStore.summary`)."""

    stores: list
    names: list
    summaries: list


class Analysis:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    suffix: ClassVar[str] = ""  # the figure is <out stem><suffix>.png; "" is the main figure, `out` itself
    kinds: ClassVar[tuple] = ()  # branch kinds drawn here, never beside the baselines
    command: ClassVar[Optional[str]] = None  # the CLI verb that computes its records, where `find` does not
    accuracy_only: ClassVar[bool] = False  # drawn for accuracy metrics only

    def figures(self, runs: Runs, out: Path, metric: str, **options) -> list[Path]:
        raise NotImplementedError

    def path(self, out: Path) -> Path:
        return out.with_name(f"{out.stem}{self.suffix}.png") if self.suffix else out
