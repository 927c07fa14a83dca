"""The main figure: each run's ticket, its per-level baselines and its dense network against weights remaining."""
from __future__ import annotations

from pathlib import Path

from tflottery import plots
from tflottery.analysis.base import Analysis, Runs


class Levels(Analysis):
    name = "levels"
    description = "the ticket, its per-level baselines and the dense network, mean and 95% band over replicates"

    def figures(self, runs: Runs, out: Path, metric: str, branches=None, elsewhere: tuple = (), **options) -> list[Path]:
        ylabel, scale = plots.METRICS[metric]
        return [plots.levels_figure(runs.names, runs.summaries, self.path(out), metric, branches, ylabel, scale,
                                    elsewhere)]
