"""Figures from run records (never computing results): the paper's plots, as PNG.

* accuracy against weights remaining (log axis, 100% on the left), one line per series,
  error bars (min to max) across replicates where there are several;
* a metric against training iterations, one line per level;
* early-stopping iteration against weights remaining.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

os.environ.setdefault("MPLBACKEND", "Agg")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from tflottery.files import atomic_write  # noqa: E402

STYLE = {"ticket": dict(color="C0", marker="o"), "reinit": dict(color="C3", marker="s", linestyle="--"),
         "random_prune": dict(color="C2", marker="^", linestyle=":")}


def _save(fig, path: Path) -> Path:
    import io

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=150)
    plt.close(fig)
    return atomic_write(path, buffer.getvalue())


def _title(ax, title: str) -> None:
    import textwrap

    if title:
        ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize="medium")


def _remaining_axis(ax, values):
    ax.set_xscale("log")
    ax.invert_xaxis()
    ticks = sorted({round(100 * v, 1) for v in values}, reverse=True)
    if len(ticks) > 9:
        ticks = ticks[::max(1, len(ticks) // 8)]
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("weights remaining (%)")


def by_remaining(series: dict, path: "str | Path", metric: str = "early_stop_test_accuracy",
                 ylabel: str = "test accuracy at early stop (%)", title: str = "", scale: float = 100.0) -> Path:
    """`series`: {label: [summary rows]}; rows of one level from several replicates become error bars."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    every = []
    for i, (label, rows) in enumerate(series.items()):
        levels = sorted({r["level"] for r in rows})
        x = [np.mean([r["remaining"] for r in rows if r["level"] == lv]) * 100 for lv in levels]
        ys = [[r[metric] * scale for r in rows if r["level"] == lv] for lv in levels]
        mean = np.array([np.mean(y) for y in ys])
        err = np.array([[m - min(y), max(y) - m] for m, y in zip(mean, ys)]).T
        style = STYLE.get(label.split(" ")[0], dict(color=f"C{i}", marker="osD^v"[i % 5]))
        ax.errorbar(x, mean, yerr=err if any(len(y) > 1 for y in ys) else None, label=label, capsize=3, **style)
        every += [v / 100 for v in x]
    _remaining_axis(ax, every)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()
    _title(ax, title)
    return _save(fig, Path(path))


def by_iteration(histories: dict, path: "str | Path", metric: str = "test_accuracy",
                 ylabel: str = "test accuracy (%)", title: str = "", scale: Optional[float] = None) -> Path:
    """`histories`: {label (e.g. '51.3% remaining'): [history rows with 'step' and `metric`]}."""
    scale = scale if scale is not None else (100.0 if metric.endswith("accuracy") else 1.0)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(histories))))
    for color, (label, rows) in zip(colors, histories.items()):
        ax.plot([r["step"] for r in rows], [r[metric] * scale for r in rows], label=label, color=color, marker=".")
    ax.set_xlabel("training iterations")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", ncol=2 if len(histories) > 6 else 1)
    _title(ax, title)
    return _save(fig, Path(path))


def plot_runs(runs: "list[str | Path]", out: "str | Path" = "plot.png", metric: str = "early_stop_test_accuracy") -> Path:
    """Accuracy against weights remaining for several run directories on one figure (ticket and baselines)."""
    from tflottery.engine.store import SUMMARY_KEYS, RunStore
    from tflottery.errors import ConfigError, RunError

    metrics = [k for k in SUMMARY_KEYS if k not in ("level", "branch", "remaining")]
    if metric not in metrics:
        raise ConfigError(f"metric={metric!r} is not recorded per level: use one of {', '.join(metrics)}.")
    series = {}
    for path in runs:
        run = RunStore.open(path)
        if not run.summary():
            raise RunError(f"{path} holds no finished level: pass run directories made by `tflottery find`.")
        for row in run.summary():
            label = row["branch"] if len(runs) == 1 else f"{row['branch']} ({Path(path).name})"
            series.setdefault(label, []).append(row)
    return by_remaining(series, out, metric=metric, ylabel=metric.replace("_", " ") + " (%)")
