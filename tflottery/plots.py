"""Figures from run records (never computing results): the paper's plots, as PNG.

* accuracy against weights remaining (log axis, 100% on the left), one line per series,
  error bars (min to max) across replicates where there are several, said in a caption;
  several runs on one figure each get a colour, and a legend naming what differs between them;
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

from tflottery.core.files import atomic_write  # noqa: E402

STYLE = {"ticket": dict(color="C0", marker="o"), "reinit": dict(color="C3", marker="s", linestyle="--"),
         "random_prune": dict(color="C2", marker="^", linestyle=":"), "supermask": dict(color="C4", marker="D")}
BRANCH_LINES = {"ticket": dict(marker="o", linestyle="-"), "reinit": dict(marker="s", linestyle="--"),
                "random_prune": dict(marker="^", linestyle=":"), "supermask": dict(marker="D", linestyle="-.")}
METRICS = {  # metric: (axis label, scale)
    "early_stop_test_accuracy": ("test accuracy at early stop (%)", 100.0),
    "final_test_accuracy": ("test accuracy at the end of the level (%)", 100.0),
    "final_test_loss": ("test loss at the end of the level (cross-entropy, nats)", 1.0),
    "early_stop_step": ("early-stopping iteration (minimum validation loss)", 1.0),
    "wall_time_s": ("training time per level (s)", 1.0),
}


def check_figure_path(out) -> Path:
    """Where a figure may go: a .png file path whose folder can be written, not a folder itself."""
    from tflottery.core.errors import ConfigError
    from tflottery.core.files import check_folder

    if not isinstance(out, (str, Path)) or not str(out):
        raise ConfigError(f"out={out!r} must name a .png file.")
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"out={str(out)!r} is a folder: name the figure's file, e.g. --out={out / 'plot.png'}.")
    if out.suffix.lower() != ".png":
        raise ConfigError(f"out={str(out)!r}: figures are PNG files; name it ...png.")
    check_folder(out.parent if str(out.parent) else ".", "the figure's folder")
    return out


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
                 ylabel: str = "test accuracy at early stop (%)", title: str = "", scale: float = 100.0,
                 styles: Optional[dict] = None, references: Optional[dict] = None, caption: str = "") -> Path:
    """`series`: {label: [summary rows]}; rows of one level from several replicates become error bars.

    `styles` gives a series its matplotlib style; `references` draws {label: (value, style)} as
    horizontal lines (the dense network); `caption` goes under the axes.
    """
    fig, ax = plt.subplots(figsize=(7.0, 4.6 if caption else 4.2))
    every = []
    for i, (label, rows) in enumerate(series.items()):
        levels = sorted({r["level"] for r in rows})
        x = [np.mean([r["remaining"] for r in rows if r["level"] == lv]) * 100 for lv in levels]
        ys = [[r[metric] * scale for r in rows if r["level"] == lv] for lv in levels]
        mean = np.array([np.mean(y) for y in ys])
        err = np.array([[m - min(y), max(y) - m] for m, y in zip(mean, ys)]).T
        style = (styles or {}).get(label) or STYLE.get(label.split(" ")[0], dict(color=f"C{i}", marker="osD^v"[i % 5]))
        ax.errorbar(x, mean, yerr=err if any(len(y) > 1 for y in ys) else None, label=label, capsize=3, **style)
        every += [v / 100 for v in x]
    for label, (value, style) in (references or {}).items():
        ax.axhline(value * scale, label=label, linewidth=1, linestyle=(0, (1, 2)), **style)
    _remaining_axis(ax, every)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    _title(ax, title)
    if caption:
        fig.text(0.01, 0.01, caption, fontsize="small", ha="left", va="bottom", wrap=True)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
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


def plot_runs(runs: "list[str | Path]", out: "str | Path" = "plot.png", metric: str = "early_stop_test_accuracy",
              branches: "Optional[list]" = None, untrained: bool = True) -> Path:
    """`metric` against weights remaining for one or more run directories on one figure.

    Each run has its own colour, each branch its own marker and line; the legend names each
    run by what differs between the runs' configurations; a dotted line marks each run's
    dense network (level 0); error bars span the replicates, as the caption says.
    """
    from tflottery.engine.store import TICKET, RunStore
    from tflottery.core.errors import ConfigError, RunError

    if metric not in METRICS:
        raise ConfigError(f"metric={metric!r} is not recorded per level: use one of {', '.join(METRICS)}.")
    check_figure_path(out)
    stores = [RunStore.open(path) for path in runs]
    names = run_labels([store.spec()["identity"] for store in stores], [store.name for store in stores])
    series, styles, references, replicates = {}, {}, {}, set()
    for i, (store, name) in enumerate(zip(stores, names)):
        rows = store.summary()
        if not rows:
            raise RunError(f"{store.path} holds no finished level: pass run directories made by `tflottery find`.")
        replicates.add(len({r["replicate"] for r in rows}))
        colour = f"C{i % 10}"
        for row in rows:
            if branches is not None and row["branch"] not in branches:
                continue
            kind = row["branch"].split("-")[0]
            label = row["branch"] if len(stores) == 1 else f"{name}: {row['branch']}"
            series.setdefault(label, []).append(row)
            styles[label] = dict(color=STYLE.get(kind, {}).get("color", colour) if len(stores) == 1 else colour,
                                 **BRANCH_LINES.get(kind, dict(marker="D", linestyle="-.")))
        if untrained and metric.endswith("accuracy"):  # the masks with no training beside the trained ticket (supermasks)
            for key, text, marker in (("mask_at_init_accuracy", "mask x init, untrained", "x"),
                                      ("signed_constant_accuracy", "signed constant, untrained", "+")):
                untrained = [dict(r, **{metric: r[key]}) for r in rows if r["branch"] == TICKET and r.get(key) is not None]
                if untrained:
                    label = text if len(stores) == 1 else f"{name}: {text}"
                    series[label] = untrained
                    styles[label] = dict(color="0.45" if len(stores) == 1 else colour, marker=marker, linestyle=":")
        dense = [r[metric] for r in rows if r["level"] == 0 and r["branch"] == TICKET]
        if dense:
            references[f"{name + ': ' if len(stores) > 1 else ''}dense network (level 0)"] = (
                float(np.mean(dense)), dict(color=colour if len(stores) > 1 else "0.4"))
    ylabel, scale = METRICS[metric]
    most = max(replicates)
    caption = (f"Points: mean over replicates; error bars: lowest to highest replicate (up to {most})."
               if most > 1 else "One replicate per run: no error bars.")
    figure = by_remaining(series, out, metric=metric, ylabel=ylabel, scale=scale, styles=styles,
                          references=references, caption=caption)
    for store, name in zip(stores, names):  # runs with instability analyses get their two figures too
        points = [point for r in store.replicates() for _, point in store.replicate(r).analyses("instability")]
        if points:
            suffix = "" if len(stores) == 1 else f"_{store.name}"
            instability_figures(points, Path(out).with_name(f"{Path(out).stem}{suffix}_instability.png"))
    return figure


def run_labels(identities: list[dict], fallback: list[str]) -> list[str]:
    """Name each run by the configuration values in which the runs differ (e.g. 'rewind_step=500')."""
    flat = [_flatten(identity) for identity in identities]
    keys = sorted({k for f in flat for k in f})
    differ = [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]
    if len(identities) < 2 or not differ:
        return fallback
    labels = []
    for f in flat:
        labels.append(", ".join(f"{_short(k)}={_value(f.get(k))}" for k in differ[:4]))
    return labels if len(set(labels)) == len(labels) else fallback


def _flatten(obj, prefix: str = "") -> dict:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def _short(key: str) -> str:
    parts = key.split(".")
    return parts[-1] if parts[-1] not in ("kernel",) else "/".join(parts[-2:])


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def instability_figures(points: list, out: "str | Path", threshold: float = 2.0) -> list[Path]:
    """Error along the interpolation path (one curve per level and rewind point, test and train) and
    instability against rewind step (log-x, the threshold drawn); written beside `out`."""
    out = Path(out)
    stem = out.with_suffix("")
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    for i, p in enumerate(sorted(points, key=lambda p: (p["level"], p["rewind_step"]))):
        colour = f"C{i % 10}"
        alphas = p["pairs"][0]["alphas"]
        test = np.mean([q["test_error"] for q in p["pairs"]], axis=0)
        train = np.mean([q["train_error"] for q in p["pairs"]], axis=0)
        name = (f"level {p['level']} ({100 * p['remaining']:.1f}%), rewind {p['rewind_step']}it"
                + (", same batch order (control)" if p.get("same_order") else ""))
        ax.plot(alphas, test, color=colour, marker=".", label=f"{name}: test")
        ax.plot(alphas, train, color=colour, linestyle="--", label=f"{name}: train")
    ax.set_xlabel("interpolation alpha (0: copy 1, 1: copy 2)")
    ax.set_ylabel("error (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", ncol=2)
    _title(ax, "Error along the straight line between copies trained with different batch orders")
    paths = [_save(fig, Path(f"{stem}_path.png"))]
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    measured = [p for p in points if not p.get("same_order")]
    for i, level in enumerate(sorted({p["level"] for p in measured})):
        rows = sorted((p for p in measured if p["level"] == level), key=lambda p: p["rewind_step"])
        label = "dense network (level 0)" if level == 0 else f"IMP subnetwork, level {level} ({100 * rows[0]['remaining']:.1f}%)"
        ax.plot([p["rewind_step"] for p in rows], [p["instability"] for p in rows], marker="o", color=f"C{i}",
                label=label)
    ax.axhline(threshold, color="0.3", linestyle="--", linewidth=1, label=f"stable below {threshold:g} points")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(0, 1.5 * max([p["rewind_step"] for p in measured] + [10]))
    ax.set_xlabel("rewind step k (iterations; log scale, 0 at the left)")
    ax.set_ylabel("instability: test-error barrier (points)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    _title(ax, "Instability to SGD noise against the step copies start from")
    paths.append(_save(fig, Path(f"{stem}_barrier.png")))
    return paths


def overlap_heatmap(comparison, out: "str | Path") -> Path:
    """Pairwise Jaccard overlap of ticket masks as a heat map; each cell also gives the chance overlap."""
    names = comparison.labels or [Path(n).name if "@" not in n else n.split("/")[-1] for n in comparison.sources]
    matrix = comparison.matrix()
    chances = np.eye(len(names))
    for p in comparison.pairs:
        i, j = comparison.sources.index(p["a"]), comparison.sources.index(p["b"])
        chances[i, j] = chances[j, i] = p["chance"]
    size = 1.4 + 1.1 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    for i in range(len(names)):
        for j in range(len(names)):
            text = f"{matrix[i, j]:.2f}" if i == j else f"{matrix[i, j]:.2f}\nchance {chances[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="black" if matrix[i, j] > 0.6 else "white")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize="small")
    ax.set_yticks(range(len(names)), names, fontsize="small")
    fig.colorbar(image, ax=ax, label="Jaccard overlap of the masks (kept in both / kept in either)")
    _title(ax, "Mask overlap between tickets")
    return _save(fig, Path(out))


def mask_distance(histories: dict, steps_per_epoch: int, threshold: float, out: "str | Path") -> Path:
    """Early-bird: normalised Hamming distance between consecutive masks against epoch, the threshold drawn."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, rows in histories.items():
        ax.plot([r["step"] / steps_per_epoch for r in rows], [r["distance"] for r in rows], marker="o", label=label)
    ax.axhline(threshold, color="0.3", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch of dense training")
    ax.set_ylabel("mask distance to the previous draw (fraction of weights)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    _title(ax, "Early-bird: the mask stops changing early in dense training")
    return _save(fig, Path(out))
