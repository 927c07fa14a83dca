"""Transfers (Morcos et al. 2019): one panel per target, the transferred ticket and its reinit control."""
from __future__ import annotations

from pathlib import Path

from tflottery import plots
from tflottery.analysis.base import Analysis, Runs


class Transfer(Analysis):
    name = "transfer"
    description = "tickets retrained on other data, labels or optimizers, beside their reinit controls"
    suffix = "_transfer"
    kinds = ("transfer",)
    command = "transfer"

    def figures(self, runs: Runs, out: Path, metric: str, **options) -> list[Path]:
        ylabel, scale = plots.METRICS[metric]
        return plots.transfer_figures(runs.stores, runs.names, runs.summaries, self.path(out), metric, ylabel, scale)
