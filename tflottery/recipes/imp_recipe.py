"""IMP recipes: test accuracy against weights remaining for the ticket and its baselines."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tflottery import plots
from tflottery.api import find_ticket, verdict
from tflottery.core.names import TICKET
from tflottery.core.files import write_csv
from tflottery.core.stats import interval
from tflottery.recipes.settings import run_config
from tflottery.report import markdown_table, write_report
from tflottery.tickets import export_ticket

UNTRAINED = {"mask_at_init_accuracy": "mask x initial weights (no training)",
             "signed_constant_accuracy": "mask x signed constants (no training)"}


def level_table(rows: list[dict], branches: list[str]) -> list[dict]:
    """Mean over replicates per level: accuracy of the ticket and each baseline."""
    table = []
    for level in sorted({r["level"] for r in rows}):
        at = [r for r in rows if r["level"] == level]
        row = {"level": level, "remaining": 100 * np.mean([r["remaining"] for r in at]),
               "early_stop_step": np.mean([r["early_stop_step"] for r in at if r["branch"] == TICKET])}
        for branch in branches:
            accs = [r["early_stop_test_accuracy"] for r in at if r["branch"] == branch]
            row[branch] = interval(accs).text(100.0) if accs else None
        for key in UNTRAINED:
            values = [r[key] for r in at if r["branch"] == TICKET and r.get(key) is not None]
            row[key] = 100 * np.mean(values) if values else None
        table.append(row)
    return table


def histories(replicate, branch: str = TICKET) -> dict:
    """{'level L: p%': history} for every finished level of one replicate."""
    out = {}
    for level in replicate.levels(branch):
        m = replicate.metrics(level, branch)
        out[f"level {level}: {100 * m['remaining']:.1f}%"] = m["history"]
    return out


def run(name: str, cfg: dict, out: Path) -> dict:
    run_ = find_ticket(run_config(cfg))
    config = run_.config
    rows = [dict(row, run=run_.path.name) for row in run_.summary()]
    branches = [TICKET, *config.plan.branches]
    lines = {b: plots.branch_line(b, f"C{i % 10}") for i, b in enumerate(branches)}
    series = {lines[b][0]: [r for r in rows if r["branch"] == b] for b in branches}
    styles = dict(lines.values())
    untrained = {label: [dict(r, early_stop_test_accuracy=r[key]) for r in rows if r["branch"] == TICKET
                         and r.get(key) is not None] for key, label in UNTRAINED.items()}
    model, dataset = config.model.name, run_.data.info["dataset"]
    replicates = config.plan.replicates
    sample = " (5,000-digit sample)" if run_.data.info["source"].startswith("sample") else ""
    title = f"{model} on {dataset}{sample}" + (f", {replicates} replicates" if replicates > 1 else "")
    spread = " " + plots.span_caption([replicates])
    first = run_.replicate(0)
    figures = {
        f"Test accuracy against weights remaining.{spread}": plots.by_remaining(
            series, out / "accuracy_vs_remaining.png", title=title, styles=styles),
        "Test accuracy of the masks with no weight training (supermasks), beside the trained ticket": plots.by_remaining(
            {lines[TICKET][0]: series[lines[TICKET][0]], **untrained}, out / "untrained_vs_remaining.png", title=title,
            styles={lines[TICKET][0]: lines[TICKET][1],
                    **{label: dict(color=f"C{4 + i}", marker="x", linestyle=":") for i, label in enumerate(untrained)}}),
        "Test accuracy against training iterations, per level (ticket, replicate 0)": plots.by_iteration(
            histories(first), out / "accuracy_vs_iterations.png", title=title, branch="ticket, replicate 0"),
        f"Early-stopping iteration against weights remaining.{spread}": plots.by_remaining(
            series, out / "early_stop_vs_remaining.png", metric="early_stop_step", scale=1.0, styles=styles,
            ylabel="early-stop iteration (min. validation loss)", title=title),
        "Test loss against training iterations, per level (ticket, replicate 0)": plots.by_iteration(
            histories(first), out / "loss_vs_iterations.png", metric="test_loss", ylabel="test loss", title=title,
            branch="ticket, replicate 0"),
    }
    tickets = [str(export_ticket(run_, None, Path(cfg["tickets_dir"]) / name / f"{run_.path.name}-r{r}",
                                 replicate=r, overwrite=True)) for r in range(replicates)]
    write_csv(out / "results.csv", rows)
    table = level_table(rows, branches)
    columns = {"level": ("level", "{}"), "remaining": ("weights remaining %", "{:.1f}"),
               **{b: (f"{b} acc %", "{}") for b in branches},
               "mask_at_init_accuracy": ("mask x init, untrained %", "{:.2f}"),
               "signed_constant_accuracy": ("signed constant, untrained %", "{:.2f}"),
               "early_stop_step": ("ticket early-stop it", "{:.0f}")}
    t, p = config.training, run_.plan
    what = (f"Iterative magnitude pruning of `{model}`: {p.levels[-1]} levels, {config.pruning.strategy} pruning "
            f"({_rates(p.strategy)}), rewind to {config.pruning.rewind}; {t.optimizer} lr {t.lr}, batch {t.batch_size}, "
            f"{t.steps} per level; {replicates} replicate(s). Accuracy is test accuracy at the early-stopping "
            f"iteration (minimum validation loss), as in Frankle & Carbin (2019): mean ± the half-width of the 95% "
            f"t interval over replicates.")
    judged = verdict(run_)
    write_report(out, f"{name}: {title}", what, run_.data.describe(), markdown_table(table, columns), figures,
                 notes=f"**Verdict:** {judged.line}")
    return {"rows": rows, "table": table, "runs": [str(run_.path)], "tickets": tickets, "verdict": judged.to_dict(),
            "data": run_.data.describe(), "figures": [str(p) for p in figures.values()]}


def _rates(strategy) -> str:
    identity = strategy.identity()
    if "rates" in identity:
        by_layer = {k.split("/")[0]: v for k, v in identity["rates"].items()}  # a layer's variables share a rate
        return ", ".join(f"{k} {v:.0%}" for k, v in by_layer.items()) + " per level"
    return f"{identity['rate']:.0%} of all survivors per level"
