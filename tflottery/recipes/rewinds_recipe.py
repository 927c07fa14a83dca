"""IMP at two rewind points with its baselines, and the instability barriers there (Frankle et al. 2020): the recipe
kind of the transformer recipes.

For each point in `rewinds` (rewinding to initialisation and to an early step k) one IMP run with the ticket, the
reinit control and random pruning over replicates, reported as the `imp` kind reports (its own table, figures,
verdict, tickets, under `rewind_<point>/`); then the error barrier between copies trained from each point, for the
dense network and for the IMP subnetwork at `sparse_level` of the run rewinding there: the stabilized LTH's claim to
check is that tickets appear only when rewinding to a point where training is stable.
"""
from __future__ import annotations

import copy
from pathlib import Path

from tflottery.analysis.instability import barrier_interval, instability
from tflottery.recipes import imp_recipe
from tflottery.report import markdown_table
from tflottery.core.files import atomic_write, write_csv


def run(name: str, cfg: dict, out: Path) -> dict:
    results, lines = {}, [f"# {name}", "", cfg["description"], ""]
    for point in cfg["rewinds"]:
        sub = copy.deepcopy(cfg)
        sub["run"].setdefault("pruning", {})["rewind"] = point
        sub["run"].setdefault("plan", {})["capture"] = [p for p in cfg["rewinds"] if p != "0it"]
        results[point] = imp_recipe.run(f"{name}/rewind_{point}", sub, out / f"rewind_{point}")
        lines += [f"## Rewinding to {point}", "", f"**Verdict:** {results[point]['verdict']['verdict']}", "",
                  f"Table, figures and tickets: [rewind_{point}/report.md](rewind_{point}/report.md).", ""]
    options = {"copies": cfg["copies"], "alphas": cfg["alphas"], "verbose": False}
    first = results[cfg["rewinds"][0]]["runs"][0]
    points = list(instability(first, 0, cfg["rewinds"], recapture=True, **options).points)
    for point in cfg["rewinds"]:
        points += instability(results[point]["runs"][0], cfg["sparse_level"], [point], **options).points
    rows = [{"network": "dense" if p["level"] == 0 else f"IMP level {p['level']}", "remaining": 100 * p["remaining"],
             "rewind_step": p["rewind_step"], "instability_interval": barrier_interval(p).text(),
             "stable": p["verdict"]} for p in points]
    write_csv(out / "instability.csv", rows)
    columns = {"network": ("network", "{}"), "remaining": ("weights remaining %", "{:.1f}"),
               "rewind_step": ("rewind step", "{}"),
               "instability_interval": ("instability (test error barrier, points, 95% interval)", "{}"),
               "stable": ("verdict at 2 points", "{}")}
    lines += ["## Instability (linear mode connectivity)", "",
              f"{cfg['copies']} copies per point, trained from it to the end on different batch orders; the barrier is "
              "the largest test error on the straight line between two copies minus the mean of its ends.", "",
              markdown_table(rows, columns), ""]
    atomic_write(out / "report.md", "\n".join(lines).encode())
    return {"rewinds": {p: {k: r[k] for k in ("table", "runs", "tickets", "verdict", "figures")}
                        for p, r in results.items()},
            "instability": rows, "runs": [r for p in results.values() for r in p["runs"]],
            "tickets": [t for p in results.values() for t in p["tickets"]],
            "data": results[cfg["rewinds"][0]]["data"], "figures": []}
