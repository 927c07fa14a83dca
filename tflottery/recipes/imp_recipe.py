"""IMP recipes: test accuracy against weights remaining for the ticket and its baselines."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tflottery import plots
from tflottery.lottery import find_ticket
from tflottery.recipes.common import run_config
from tflottery.report import markdown_table, write_report
from tflottery.runs import MAIN, write_csv
from tflottery.tickets import export_ticket

LABELS = {MAIN: "ticket (rewound)", "reinit": "reinit (random reinitialisation)",
          "random_prune": "random_prune (random mask)"}


def level_table(rows: list[dict], branches: list[str]) -> list[dict]:
    """Mean over replicates per level: accuracy of the ticket and each baseline."""
    table = []
    for level in sorted({r["level"] for r in rows}):
        at = [r for r in rows if r["level"] == level]
        row = {"level": level, "remaining": 100 * np.mean([r["remaining"] for r in at]),
               "early_stop_step": np.mean([r["early_stop_step"] for r in at if r["branch"] == MAIN])}
        for branch in branches:
            accs = [r["early_stop_test_accuracy"] for r in at if r["branch"] == branch]
            row[branch] = 100 * np.mean(accs) if accs else None
        table.append(row)
    return table


def histories(run_dir, branch: str = MAIN) -> dict:
    """{'<p>% remaining': history} for every finished level of one run."""
    out = {}
    for level in run_dir.levels():
        m = run_dir.metrics(level, branch)
        out[f"level {level}: {100 * m['remaining']:.1f}%"] = m["history"]
    return out


def run(name: str, cfg: dict, out: Path) -> dict:
    runs = [find_ticket(run_config(cfg, None, rep)) for rep in range(cfg["replicates"])]
    rows = [dict(row, replicate=rep, run=r.path.name) for rep, r in enumerate(runs) for row in r.summary()]
    branches = [MAIN, *runs[0].config.pruning.branches]
    series = {LABELS[b]: [r for r in rows if r["branch"] == b] for b in branches}
    model, dataset = runs[0].config.model.name, runs[0].data.info["dataset"]
    sample = " (5,000-digit sample)" if runs[0].data.info["source"].startswith("sample") else ""
    title = f"{model} on {dataset}{sample}" + (f", {len(runs)} replicates" if len(runs) > 1 else "")
    figures = {
        "Test accuracy against weights remaining": plots.by_remaining(series, out / "accuracy_vs_remaining.png", title=title),
        "Test accuracy against training iterations, per level (ticket)": plots.by_iteration(
            histories(runs[0].dir), out / "accuracy_vs_iterations.png", title=title),
        "Early-stopping iteration against weights remaining": plots.by_remaining(
            series, out / "early_stop_vs_remaining.png", metric="early_stop_step", scale=1.0,
            ylabel="early-stop iteration (min. validation loss)", title=title),
        "Test loss against training iterations, per level (ticket)": plots.by_iteration(
            histories(runs[0].dir), out / "loss_vs_iterations.png", metric="test_loss", ylabel="test loss", title=title),
    }
    tickets = [str(export_ticket(r.dir, None, Path(cfg["tickets_dir"]) / name / r.path.name)) for r in runs]
    write_csv(out / "results.csv", rows)
    table = level_table(rows, branches)
    columns = {"level": ("level", "{}"), "remaining": ("weights remaining %", "{:.1f}"),
               **{b: (f"{b} acc %", "{:.2f}") for b in branches}, "early_stop_step": ("ticket early-stop it", "{:.0f}")}
    t = runs[0].config.training
    what = (f"Iterative magnitude pruning of `{model}`: {runs[0].plan.levels} levels, {runs[0].config.pruning.strategy} "
            f"pruning (dense {runs[0].config.pruning.dense_rate:.0%}, conv {runs[0].config.pruning.conv_rate:.0%} per level, "
            f"output at {'half rate' if runs[0].config.pruning.output_rate is None else runs[0].config.pruning.output_rate}), "
            f"rewind to {runs[0].config.pruning.rewind}; {t.optimizer} lr {t.lr}, batch {t.batch_size}, "
            f"{t.steps} per level; {len(runs)} replicate(s). Accuracy is test accuracy at the early-stopping "
            f"iteration (minimum validation loss), as in Frankle & Carbin (2019).")
    write_report(out, f"{name}: {title}", what, runs[0].data.describe(), markdown_table(table, columns), figures)
    return {"rows": rows, "table": table, "runs": [str(r.path) for r in runs], "tickets": tickets,
            "data": runs[0].data.describe(), "figures": [str(p) for p in figures.values()]}
