"""Masks with no weight training (the ticket's mask on its initial weights and on signed constants) and learned
supermasks, beside the trained ticket (Zhou et al. 2019; Ramanujan et al. 2020)."""
from __future__ import annotations

from pathlib import Path

from tflottery import plots
from tflottery.analysis.base import Analysis, Runs


class Untrained(Analysis):
    name = "untrained"
    description = "masks with no weight training and learned supermasks, beside the trained ticket"
    suffix = "_untrained"
    kinds = ("supermask",)
    accuracy_only = True

    def figures(self, runs: Runs, out: Path, metric: str, **options) -> list[Path]:
        ylabel, scale = plots.METRICS[metric]
        return plots.untrained_figures(runs.names, runs.summaries, self.path(out), metric, ylabel, scale)
