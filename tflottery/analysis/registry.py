"""Analyses, one registered kind per file: `tflottery plot` (`plot_runs`) draws every one of them.

Adding an analysis: subclass `Analysis` (`tflottery.analysis.base`) in a file of its own and add
it to `ANALYSES` here (or `tflottery.extend.register_analysis`); its figures appear beside the
main one for every run holding its records, and the branch kinds it names leave the main figure.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from tflottery.analysis.base import Analysis, Runs
from tflottery.analysis.instability import Instability
from tflottery.analysis.levels import Levels
from tflottery.analysis.successive import SuccessiveLevels
from tflottery.analysis.transfer import Transfer
from tflottery.analysis.untrained import Untrained

ANALYSES: dict[str, type] = {}


def register(cls: type) -> type:
    if not (isinstance(cls, type) and issubclass(cls, Analysis)):
        raise TypeError(f"register_analysis takes an Analysis subclass, not {cls!r}.")
    ANALYSES[cls.name] = cls
    return cls


for _cls in (Levels, Untrained, Transfer, Instability, SuccessiveLevels):
    register(_cls)


def plot_runs(runs: "list[str | Path]", out: "str | Path" = "plot.png", metric: str = "early_stop_test_accuracy",
              branches: "Optional[list]" = None, untrained: bool = True, skip: "tuple | list" = ()) -> list[Path]:
    """`metric` against weights remaining for one or more run directories: the figures written, the main one first.

    The main figure (`levels`) is the experiment: each run's ticket, its per-level baselines and its
    dense network, mean and interval band over replicates; several runs each get a colour, each
    branch a marker and line, in a compact legend naming each run by what differs between their
    configurations. Every other registered analysis draws its own figure beside `out` where the
    runs hold its records; `skip` names analyses left out (`untrained=False` is skip=['untrained']).
    """
    from tflottery import plots
    from tflottery.core.errors import ConfigError, RunError
    from tflottery.engine.store import RunStore

    if metric not in plots.METRICS:
        raise ConfigError(f"metric={metric!r} is not recorded per level: use one of {', '.join(plots.METRICS)}.")
    unknown = sorted(set(skip) - set(ANALYSES) - {Levels.name})
    if unknown or Levels.name in skip:
        raise ConfigError(f"skip={list(skip)!r}: name analyses among {', '.join(a for a in ANALYSES if a != Levels.name)} "
                          "(the main figure is always drawn).")
    out = plots.check_figure_path(out)
    stores = [RunStore.open(path) for path in runs]
    summaries = []
    for store in stores:
        rows = store.summary()
        if not rows:
            raise RunError(f"{store.path} holds no finished level: pass run directories made by `tflottery find`.")
        summaries.append(rows)
    drawn = Runs(stores, plots.run_labels([store.config() for store in stores], [s.name for s in stores]), summaries)
    skip = set(skip) | (set() if untrained else {Untrained.name})
    elsewhere = tuple(kind for cls in ANALYSES.values() for kind in cls.kinds)
    figures = []
    for name, cls in ANALYSES.items():
        if name in skip or (cls.accuracy_only and not metric.endswith("accuracy")):
            continue
        figures += cls().figures(drawn, out, metric, branches=branches, elsewhere=elsewhere)
    return figures
