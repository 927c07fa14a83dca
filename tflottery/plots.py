"""Figures from run records (never computing results): the paper's plots, as PNG.

* accuracy against weights remaining (log axis, 100% on the left): the ticket, its per-level
  baselines and the dense network, each the mean over replicates with a band of its 95%
  t-interval, said in a caption; several runs on one figure each get a colour and a compact
  legend naming what differs between them in the user's flags; analyses (untrained masks and
  supermasks, transfers, instability) in figures of their own;
* a metric against training iterations, one line per level of one branch;
* early-bird mask distances with the draw marked; mask overlaps between tickets.
Legends sit outside the axes, never over the data.
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
from tflottery.core.stats import CONFIDENCE, STABLE_PP, interval  # noqa: E402

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
    """PNG at 150 dpi, cropped to what is drawn (legends outside the axes included)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight", pad_inches=0.08)
    plt.close(fig)
    return atomic_write(path, buffer.getvalue())


def _title(ax, title: str) -> None:
    import textwrap

    if title:
        ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize="medium")


def _legend_outside(ax, handles=None, labels=None, **kwargs):
    """The legend to the right of the axes, never over the data."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize="small", frameon=False, **kwargs)


def _caption(fig, ax, text: str) -> None:
    if text:
        ax.annotate(text, xy=(0, 0), xycoords="axes fraction", xytext=(0, -42), textcoords="offset points",
                    fontsize="small", ha="left", va="top", wrap=True)


def span_caption(counts: "set[int] | list[int]", what: str = "replicates") -> str:
    """What a figure's bands span, in words."""
    counts = sorted({c for c in counts if c})
    if not counts or counts[-1] < 2:
        return f"One {what[:-1] if what.endswith('s') else what} per point: no interval."
    n = f"{counts[-1]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"Lines: mean over {n} {what}; bands: {int(100 * CONFIDENCE)}% t-interval of the mean."


def _remaining_axis(ax, values):
    ax.set_xscale("log")
    ax.invert_xaxis()
    ticks = sorted({round(100 * v, 1) for v in values}, reverse=True)
    if len(ticks) > 9:
        ticks = ticks[::max(1, len(ticks) // 8)]
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("weights remaining (% of the pruned variables)")


def _of_all_axis(ax, rows: list) -> None:
    """A top axis: the bottom's ticks as a % of every trainable weight, where every row's remaining maps to its
    `remaining_of_all` by one line (one model's counts; runs of several models get none)."""
    fractions = {round((r["remaining_of_all"] - r["remaining"]) / (1 - r["remaining"]), 9) for r in rows
                 if r.get("remaining_of_all") is not None and r.get("remaining") is not None and r["remaining"] < 1}
    if len(fractions) != 1:
        return
    dense = fractions.pop()  # of_all = (1 - dense) * remaining + dense

    def forward(x):
        return (1 - dense) * np.asarray(x) + 100 * dense

    def inverse(y):
        return (np.asarray(y) - 100 * dense) / max(1e-12, 1 - dense)

    top = ax.secondary_xaxis("top", functions=(forward, inverse))
    top.set_xticks([float(forward(t)) for t in ax.get_xticks()])
    top.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    top.xaxis.set_minor_formatter(NullFormatter())
    top.set_xlabel("of every trainable weight (%)", fontsize="small")


def _curve(rows: list, metric: str, scale: float):
    """x (% remaining), mean, low, high per level of summary rows (several replicates per level)."""
    levels = sorted({r["level"] for r in rows})
    x, mean, low, high, counts = [], [], [], [], []
    for level in levels:
        at = [r for r in rows if r["level"] == level and r.get(metric) is not None]
        if not at:
            continue
        got = interval([scale * r[metric] for r in at])
        x.append(100 * float(np.mean([r["remaining"] for r in at])))
        mean.append(got.mean)
        low.append(got.mean if got.low is None else got.low)
        high.append(got.mean if got.high is None else got.high)
        counts.append(got.n)
    return x, mean, low, high, counts


def by_remaining(series: dict, path: "str | Path", metric: str = "early_stop_test_accuracy",
                 ylabel: str = "test accuracy at early stop (%)", title: str = "", scale: float = 100.0,
                 styles: Optional[dict] = None, references: Optional[dict] = None, caption: str = "",
                 legend: Optional[list] = None) -> Path:
    """`series`: {label: [summary rows]}; the rows of one level from several replicates become the mean
    and a band of its t-interval, and the caption says what the bands span.

    `styles` gives a series its matplotlib style; `references` draws {label: (values, style)} as a
    horizontal line at their mean with its band (the dense network); `legend`, a list of
    (style, label), replaces the automatic legend (a compact one for many runs).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    every, counts = [], []
    for i, (label, rows) in enumerate(series.items()):
        x, mean, low, high, n = _curve(rows, metric, scale)
        if not x:
            continue
        style = dict((styles or {}).get(label) or dict(color=f"C{i % 10}", marker="osD^v"[i % 5]))
        line, = ax.plot(x, mean, label=label, markersize=4, **style)
        if max(n) > 1:
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.18, linewidth=0)
        every += [v / 100 for v in x]
        counts += n
    for label, (values, style) in (references or {}).items():
        values = values if isinstance(values, (list, tuple)) else [values]
        got = interval([scale * v for v in values])
        ax.axhline(got.mean, label=label, linewidth=1, linestyle=(0, (1, 2)), **style)
        if got.low is not None:
            ax.axhspan(got.low, got.high, alpha=0.08, color=style.get("color", "0.4"), linewidth=0)
    _remaining_axis(ax, every or [1.0])
    _of_all_axis(ax, [row for rows in series.values() for row in rows])
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if legend is not None:
        from matplotlib.lines import Line2D

        _legend_outside(ax, [Line2D([], [], **style) for style, _ in legend], [label for _, label in legend])
    else:
        _legend_outside(ax)
    _title(ax, title)
    _caption(fig, ax, " ".join(t for t in (span_caption(counts), caption) if t))
    return _save(fig, Path(path))


def by_iteration(histories: dict, path: "str | Path", metric: str = "test_accuracy",
                 ylabel: str = "test accuracy (%)", title: str = "", scale: Optional[float] = None,
                 branch: str = "ticket") -> Path:
    """`histories`: {label (e.g. 'level 3: 51.3%'): [history rows with 'step' and `metric`]} of one branch."""
    scale = scale if scale is not None else (100.0 if metric.endswith("accuracy") else 1.0)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(histories))))
    for color, (label, rows) in zip(colors, histories.items()):
        ax.plot([r["step"] for r in rows], [r[metric] * scale for r in rows], label=label, color=color, marker=".")
    ax.set_xlabel("training iterations")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    _legend_outside(ax, title=f"{branch}, by level", ncol=2 if len(histories) > 12 else 1)
    _title(ax, title)
    return _save(fig, Path(path))


UNTRAINED = {"mask_at_init_accuracy": ("mask x init, untrained", "x", "C1"),
             "signed_constant_accuracy": ("signed constant, untrained", "+", "C2")}


def _kind(branch: str) -> str:
    return branch.split("-")[0]


def branch_line(key: str, colour: str) -> tuple:
    """(legend label, matplotlib style) of a stored branch: its kind's own, `colour` where the kind has none."""
    from tflottery.engine.branches import kind_of

    cls = kind_of(key)
    style = dict(marker="D", linestyle="-.", **{"color": colour}) if cls is None or not cls.style else dict(cls.style)
    return (cls.legend() if cls is not None and key == cls.kind else key), style


def levels_figure(names: list, summaries: list, out: Path, metric: str, branches: "Optional[list]",
                  ylabel: str, scale: float, elsewhere: "tuple | set" = ()) -> Path:
    """Each run's ticket, its per-level baselines and its dense network (level 0) against weights remaining;
    branch kinds in `elsewhere` have figures of their own and are left out."""
    from tflottery.core.names import TICKET
    from tflottery.engine.branches import BRANCHES

    single = len(names) == 1
    series, styles, references, kinds = {}, {}, {}, {}
    order = {b: n for n, b in enumerate(BRANCHES)}
    for i, (name, rows) in enumerate(zip(names, summaries)):
        colour = f"C{i % 10}"
        for row in sorted(rows, key=lambda r: (order.get(_kind(r["branch"]), len(order)), r["branch"])):
            kind = _kind(row["branch"])
            if kind in elsewhere or (branches is not None and row["branch"] not in branches):
                continue
            own, style = branch_line(row["branch"], colour)
            label = own if single else f"{name}: {row['branch']}"
            series.setdefault(label, []).append(row)
            line = {k: v for k, v in style.items() if k != "color"}
            styles[label] = dict(color=style["color"] if single else colour, **line)
            kinds[row["branch"]] = (line, own)
        dense = [r[metric] for r in rows if r["level"] == 0 and r["branch"] == TICKET and r.get(metric) is not None]
        if dense:
            references["dense network (level 0)" if single else f"{name}: dense"] = (
                dense, dict(color="0.35" if single else colour))
    legend = None
    if not single:  # compact: one entry per run (its colour), one per branch (its line), one for dense
        legend = [(dict(color=f"C{i % 10}", linewidth=6, alpha=0.7), name) for i, name in enumerate(names)]
        legend += [(dict(color="0.3", **line), own) for line, own in kinds.values()]
        legend.append((dict(color="0.3", linestyle=(0, (1, 2))), "dense network (level 0)"))
    return by_remaining(series, out, metric=metric, ylabel=ylabel, scale=scale, styles=styles,
                        references=references, legend=legend)


def untrained_figures(names: list, summaries: list, out: Path, metric: str, ylabel: str, scale: float) -> list[Path]:
    """The trained ticket beside its masks with no weight training and the learned supermasks."""
    from tflottery.core.names import TICKET

    series, styles = {}, {}
    single = len(names) == 1
    for i, (name, rows) in enumerate(zip(names, summaries)):
        prefix = "" if single else f"{name}: "
        ticket = [r for r in rows if r["branch"] == TICKET]
        series[f"{prefix}trained ticket"] = ticket
        styles[f"{prefix}trained ticket"] = dict(color="C0" if single else f"C{i % 10}", marker="o")
        for key, (text, marker, colour) in UNTRAINED.items():
            values = [dict(r, **{metric: r[key]}) for r in ticket if r.get(key) is not None]
            if values:
                series[prefix + text] = values
                styles[prefix + text] = dict(color=colour if single else f"C{i % 10}", marker=marker, linestyle=":")
        learned = [r for r in rows if _kind(r["branch"]) == "supermask"]
        if learned:
            series[f"{prefix}learned supermask, untrained weights"] = learned
            style = branch_line("supermask", "C4")[1]
            styles[f"{prefix}learned supermask, untrained weights"] = dict(style, **({} if single else {"color": f"C{i % 10}"}))
    if len(series) == len(names):  # nothing untrained recorded
        return []
    return [by_remaining(series, out, metric=metric, ylabel=ylabel, scale=scale, styles=styles,
                         title="Masks with no weight training beside the trained ticket")]


def transfer_figures(stores: list, names: list, summaries: list, out: Path, metric: str, ylabel: str,
                     scale: float) -> list[Path]:
    """One panel per transfer target: the transferred ticket and its reinit control."""
    targets: dict = {}
    for store, name, rows in zip(stores, names, summaries):
        for row in rows:
            if _kind(row["branch"]) != "transfer":
                continue
            params = store.replicate(row["replicate"]).branch_meta(row["level"], row["branch"]).get("params", {})
            target = _target_name(params)
            role = "reinit control" if params.get("init") == "reinit" else "transferred ticket"
            label = role if len(stores) == 1 else f"{name}: {role}"
            targets.setdefault(target, {}).setdefault(label, []).append(row)
    if not targets:
        return []
    fig, axes = plt.subplots(1, len(targets), figsize=(6.4 * len(targets), 4.2), squeeze=False)
    counts = []
    for ax, (target, series) in zip(axes[0], targets.items()):
        every = []
        for i, (label, rows) in enumerate(series.items()):
            x, mean, low, high, n = _curve(rows, metric, scale)
            style = branch_line("reinit" if label.endswith("control") else "ticket", f"C{i % 10}")[1]
            line, = ax.plot(x, mean, label=label, markersize=4, **style)
            if max(n) > 1:
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.18, linewidth=0)
            every += [v / 100 for v in x]
            counts += n
        _remaining_axis(ax, every)
        ax.set_ylabel(ylabel + " on the target")
        ax.grid(True, alpha=0.3)
        _title(ax, f"retrained on {target}")
        _legend_outside(ax)
    _caption(fig, axes[0][0], span_caption(counts))
    return [_save(fig, out)]


def _target_name(params: dict) -> str:
    data, training = params.get("data", {}), params.get("training", {})
    text = data.get("dataset", "?")
    if data.get("labels"):
        text += f" labels {','.join(map(str, data['labels']))}"
    if data.get("fraction", 1.0) < 1.0:
        text += f" part {data.get('fraction_part', 0)} of {data['fraction']:g}"
    return f"{text}, {training.get('optimizer', '?')} lr {training.get('lr', '?')}, head {params.get('head', 'fresh')}"


# What differs between runs, in the flags a user typed: fields that never change a run's tickets left out.
NOT_DEFINING = {"runs_dir", "force", "training.eval_every", "training.distribute", "training.steps_per_execution",
                "training.jit_compile", "training.tensorboard", "training.verbose", "data.data_dir", "data.manual_dir",
                "data.source", "model.architecture"}


def run_labels(configs: list[dict], fallback: list[str]) -> list[str]:
    """Name each run by the settings in which the runs differ, as flags (e.g. 'rewind=500it, rate=0.3'),
    read from each run's config.json; the strategy's settings count with their defaults filled in."""
    import textwrap

    flat = [_user_settings(config) for config in configs]
    defaults = [_settings_defaults(config) for config in configs]
    keys = list(dict.fromkeys(k for f in flat for k in f))

    def differs(key) -> bool:  # a setting only some runs have (another strategy's) counts where it is not default
        held = [(f[key], d.get(key)) for f, d in zip(flat, defaults) if key in f]
        return len({repr(v) for v, _ in held}) > 1 or (len(held) < len(flat) and any(v != d for v, d in held))

    differ = [k for k in keys if differs(k)]
    if len(configs) < 2 or not differ:
        return fallback
    labels = []
    for f in flat:
        shown = [f"{k}={_value(f.get(k))}" for k in differ if k in f][:4]
        labels.append("\n".join(textwrap.wrap(", ".join(shown), 44)))
    return labels if len(set(labels)) == len(labels) else fallback


def _user_settings(config: dict) -> dict:
    """{flag name: value} of a stored RunConfig dict: one flat level, the strategy's settings filled in."""
    out = {}
    for section, values in config.items():
        if section == "plan":
            continue
        if not isinstance(values, dict):
            if section not in NOT_DEFINING:
                out[section] = values
            continue
        for key, value in values.items():
            if f"{section}.{key}" in NOT_DEFINING or key == "settings":
                continue
            out["model" if (section, key) == ("model", "name") else key] = value
    out.update({**_settings_defaults(config), **(config.get("pruning", {}).get("settings") or {})})
    return out


def _settings_defaults(config: dict) -> dict:
    """The default settings of a stored config's strategy."""
    import dataclasses

    from tflottery.pruning.resolve import STRATEGIES

    strategy = STRATEGIES.get(config.get("pruning", {}).get("strategy"))
    if strategy is None:
        return {}
    return {f.name: f.default for f in dataclasses.fields(strategy.Settings) if f.default is not dataclasses.MISSING}


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict) and "block" in value:
        return "blocks " + "x".join(map(str, value["block"]))
    if isinstance(value, dict) and {"n", "m"} <= set(value):
        return f"{value['n']}:{value['m']}"
    if value is None:
        return "none"
    return str(value).replace("'", "")


def instability_figures(points: list, out: "str | Path", threshold: float = STABLE_PP) -> list[Path]:
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
        steps = [p["rewind_step"] for p in rows]
        ax.plot(steps, [p["instability"] for p in rows], marker="o", color=f"C{i}", label=label)
        bounds = [(p.get("interval") or {}).get("low") for p in rows]
        if all(b is not None for b in bounds):
            ax.fill_between(steps, bounds, [p["interval"]["high"] for p in rows], color=f"C{i}", alpha=0.2,
                            linewidth=0)
    spans = sorted({len(p["copies"]) for p in measured})
    _caption(fig, ax, f"Bands: 95% jackknife intervals over {', '.join(map(str, spans))} copies "
                      "(the mean over every pair of copies)." if max(spans, default=0) >= 3 else
             "One pair of copies per point: no interval.")
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
    """Pairwise Jaccard overlap of ticket masks as a heat map (the diagonal, 1 by definition, greyed out so
    it does not set the colour scale); each cell also gives the overlap two random masks would have."""
    import textwrap

    names = comparison.labels or [_source_name(n) for n in comparison.sources]
    names = ["\n".join(textwrap.wrap(n, 18)) for n in names]
    matrix = np.array(comparison.matrix(), dtype=float)
    k = len(names)
    chances = np.eye(k)
    for p in comparison.pairs:
        i, j = comparison.sources.index(p["a"]), comparison.sources.index(p["b"])
        chances[i, j] = chances[j, i] = p["chance"]
    off = matrix[~np.eye(k, dtype=bool)]
    top = float(off.max()) if off.size else 1.0
    shown = np.ma.masked_array(matrix, mask=np.eye(k, dtype=bool))
    side = 1.2 + 1.15 * k
    fig, ax = plt.subplots(figsize=(side + 2.2, side), layout="constrained")
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("0.85")
    image = ax.imshow(shown, vmin=0, vmax=max(top, 1e-3), cmap=cmap)
    size = 9 if k <= 4 else 7
    for i in range(k):
        for j in range(k):
            if i == j:
                ax.text(j, i, "same\nticket", ha="center", va="center", fontsize=size - 1, color="0.35")
                continue
            ax.text(j, i, f"{matrix[i, j]:.2f}\nchance {chances[i, j]:.2f}", ha="center", va="center",
                    fontsize=size, color="black" if matrix[i, j] > 0.6 * top else "white")
    ax.set_xticks(range(k), names, rotation=30, ha="right", fontsize="small")
    ax.set_yticks(range(k), names, fontsize="small")
    fig.colorbar(image, ax=ax, shrink=0.85, label="Jaccard overlap: kept in both / kept in either")
    _title(ax, "Mask overlap between tickets")
    return _save(fig, Path(out))


def _source_name(source: str) -> str:
    """A short name for a compared source: 'run…@7:reinit' from 'runs/lenet_300_100-fashion_mnist-ab12@7:reinit'."""
    text = str(source)
    if "@" in text:
        run, _, where = text.partition("@")
        tail = Path(run).name.split("-")[-1]
        return f"{tail}@{where}"
    return Path(text).name


DISTANCE_AXIS = {"jaccard": "1 - Jaccard overlap with the previous mask",
                 "hamming": "normalised Hamming distance to the previous mask"}


def mask_distance(histories: dict, steps_per_epoch: int, threshold: float, out: "str | Path",
                  distance: str = "jaccard", drawn: Optional[dict] = None) -> Path:
    """Early-bird: the distance between consecutive masks against epoch of dense training, one line per
    target; the threshold dashed, each draw (`drawn`: {label: step}) marked with a star."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (label, rows) in enumerate(histories.items()):
        colour = f"C{i % 10}"
        ax.plot([r["step"] / steps_per_epoch for r in rows], [r["distance"] for r in rows], marker="o",
                markersize=3, color=colour, label=label)
        step = (drawn or {}).get(label)
        if step is not None:
            at = min(rows, key=lambda r: abs(r["step"] - step))
            ax.plot([step / steps_per_epoch], [at["distance"]], marker="*", markersize=13, color=colour,
                    markeredgecolor="black", linestyle="none", label=f"{label}: drawn at epoch {step / steps_per_epoch:.2f}")
    ax.axhline(threshold, color="0.3", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_xlabel("epoch of dense training")
    ax.set_ylabel(DISTANCE_AXIS.get(distance, "mask distance"))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    _legend_outside(ax)
    _title(ax, "Early-bird: distance between consecutive masks during dense training")
    return _save(fig, Path(out))
