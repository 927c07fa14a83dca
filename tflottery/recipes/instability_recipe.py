"""The instability recipe (Frankle et al. 2020): the dense network's error barrier against the rewind step,
and the IMP subnetwork's, found by IMP rewinding to each sparse point."""
from __future__ import annotations

import copy
from pathlib import Path

from tflottery import plots
from tflottery.analysis.instability import barrier_interval, instability
from tflottery.config import RunConfig
from tflottery.api import find_ticket
from tflottery.core.files import write_csv
from tflottery.recipes.settings import run_config
from tflottery.report import markdown_table, write_report


def run(name: str, cfg: dict, out: Path) -> dict:
    base = run_config(cfg)
    base.plan.capture = list(cfg["dense_points"])
    runs = {}
    for point in cfg["sparse_points"]:
        config = RunConfig.from_dict(copy.deepcopy(base.to_dict()))
        config.pruning.rewind = point
        runs[point] = find_ticket(config)
    first = runs[cfg["sparse_points"][0]]
    options = {"copies": cfg["copies"], "alphas": cfg["alphas"], "verbose": base.training.verbose}
    points = list(instability(first.path, 0, cfg["dense_points"], recapture=True, **options).points)
    for point, run_ in runs.items():
        points += instability(run_.path, cfg["sparse_level"], [point], **options).points
    rows = [{"network": "dense" if p["level"] == 0 else f"IMP level {p['level']}", "remaining": 100 * p["remaining"],
             "rewind_step": p["rewind_step"], "instability": p["instability"],
             "instability_interval": barrier_interval(p).text(),
             "train_instability": p["train_instability"], "end_accuracy": 100 * sum(p["end_test_accuracy"]) / len(p["end_test_accuracy"]),
             "stable": p["verdict"]} for p in points]
    write_csv(out / "results.csv", rows)
    figures = dict(zip(["Error along the straight line between two copies (test solid, train dashed)",
                        "Instability (test-error barrier) against the rewind step; stable below the dashed line"],
                       plots.instability_figures(points, out / "instability.png")))
    columns = {"network": ("network", "{}"), "remaining": ("weights remaining %", "{:.1f}"),
               "rewind_step": ("rewind step", "{}"), "end_accuracy": ("copies' test accuracy %", "{:.2f}"),
               "instability_interval": ("instability (test, points, 95% interval)", "{}"),
               "train_instability": ("instability (train, points)", "{:.2f}"), "stable": ("verdict at 2 points", "{}")}
    t = base.training
    what = (f"{cfg['description']}\n\n`{base.model.name}` on `{first.data.info['dataset']}`, {base.pruning.strategy} "
            f"pruning, {t.optimizer} lr {t.lr}, batch {t.batch_size}, {t.steps} per level. {cfg['copies']} copies per "
            f"point trained from the rewind point to the end with different batch orders; {cfg['alphas']} points on "
            "each straight line between them; instability = the largest test error on the line minus the mean of "
            "its ends, the mean over every pair of copies ± the half-width of its 95% jackknife interval over the copies "
            "(stable: the whole interval below 2 points). The subnetwork at each sparse point is the one IMP finds rewinding to that point.")
    write_report(out, f"{name}: linear mode connectivity", what, first.data.describe(), markdown_table(rows, columns),
                 figures)
    return {"rows": rows, "points": points, "runs": [str(r.path) for r in runs.values()],
            "figures": [str(p) for p in figures.values()], "tickets": [], "data": first.data.describe()}
