"""Transfer recipes (Morcos et al. 2019): does a ticket found on one side win on the other?

For each (source, target) pair: find tickets on the source side, retrain every level's ticket
on the target side from its rewind weights, and compare with the ticket IMP finds on the
target itself and with random reinitialisation of the transferred mask on the target.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tflottery import plots
from tflottery.analysis.compare import compare_masks
from tflottery.api import find_ticket, plan_ticket, transfer_levels
from tflottery.core.errors import ConfigError
from tflottery.core.files import write_csv
from tflottery.core.stats import interval, paired
from tflottery.recipes.settings import run_config
from tflottery.recipes.imp_recipe import _rates, histories
from tflottery.report import markdown_table, write_report
from tflottery.tickets import export_ticket

SERIES = ["source", "transferred", "target_ticket", "transferred_reinit"]


def _acc(metrics):
    return None if metrics is None else metrics["early_stop_test_accuracy"]


def run_pair(name: str, cfg: dict, source: str, target: str) -> tuple[list, tuple]:
    src_run = find_ticket(run_config(cfg, source))
    tgt_cfg = run_config(cfg, target)
    tgt_run = find_ticket(tgt_cfg)
    sides = cfg.get("sides", {})
    moved_all = {(m.replicate, m.level): m for m in
                 transfer_levels(src_run.path, tgt_cfg.data, tgt_cfg.training, seed=tgt_cfg.seed)}
    rows = []
    for r in range(src_run.config.plan.replicates):
        src, tgt = src_run.replicate(r), tgt_run.replicate(r)
        for level in src.levels():
            ticket = export_ticket(src_run, level, Path(cfg["tickets_dir"]) / name / f"{src_run.path.name}-r{r}-level_{level}",
                                   replicate=r, overwrite=True) if r == 0 else None  # others: tflottery export --replicate
            moved = moved_all[(r, level)]
            src_m = src.metrics(level)
            overlap = compare_masks(src.load_level(level).masks, tgt.load_level(level).masks) \
                if level in tgt.levels() else {"jaccard": None, "chance": None}
            rows.append({"pair": f"{sides.get(source, source)} → {sides.get(target, target)}", "replicate": r,
                         "level": level, "remaining": src_m["remaining"], "source": _acc(src_m),
                         "transferred": _acc(moved.metrics("rewind")), "transferred_reinit": _acc(moved.metrics("reinit")),
                         "target_ticket": _acc(tgt.metrics(level)),
                         "transferred_final_loss": moved.metrics("rewind")["final_test_loss"],
                         "mask_overlap": overlap["jaccard"], "mask_overlap_chance": overlap["chance"],
                         "ticket": ticket and str(ticket), "transfer_branch": moved.branches["rewind"],
                         "history": moved.metrics("rewind")["history"]})
    return rows, (src_run, tgt_run)


def _transfer_histories(rows):
    return {f"level {r['level']}: {100 * r['remaining']:.1f}%": r["history"] for r in rows}


def expect_work(cfg: dict, progress) -> None:
    """Tell the command's progress what each phase will train, before the first starts (ETA for the whole recipe)."""
    for source, target in cfg["pairs"]:
        plans = {side: plan_ticket(run_config(cfg, side)) for side in (source, target)}
        for side in (source, target):
            plan = plans[side]
            progress.expect(plan.steps + (len(plan.levels) - 1) * (plan.steps - (plan.rewind_step or 0)))
        for _ in range(run_config(cfg, source).plan.replicates * len(plans[source].levels)):
            progress.expect(2 * plans[target].steps)  # each level's transfer and its reinit control


def check(name: str, cfg: dict) -> None:
    """The recipe's pairs and sides, before any work: each pair a [source, target] of sides that have a table
    of their own flags and a name in [sides]."""
    pairs, sides = cfg.get("pairs"), cfg.get("sides")
    if not isinstance(pairs, list) or not pairs or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise ConfigError(f"recipe {name}: pairs={pairs!r} must list [source, target] sides, e.g. "
                          "pairs = [[\"source\", \"target\"]].")
    if not isinstance(sides, dict) or not sides:
        raise ConfigError(f"recipe {name}: a transfer recipe names each side in a [sides] table, e.g. "
                          "[sides] source = \"labels 0-4\"; it has none.")
    for side in dict.fromkeys(s for pair in pairs for s in pair):
        if not isinstance(side, str) or not isinstance(cfg.get(side), dict):
            raise ConfigError(f"recipe {name}: pairs names the side {side!r}, which has no table of its own flags "
                              f"(e.g. [{side}.data]).")
        if side not in sides:
            raise ConfigError(f"recipe {name}: the side {side!r} has no name in [sides]: add {side} = \"...\".")


def run(name: str, cfg: dict, out: Path) -> dict:
    from tflottery.engine import progress as progress_lib

    check(name, cfg)
    with progress_lib.command(run_config(cfg).training.verbose) as progress:
        expect_work(cfg, progress)
        return _run(name, cfg, out)


def _run(name: str, cfg: dict, out: Path) -> dict:
    sides = cfg.get("sides", {})
    all_rows, figures, data = [], {}, {}
    for source, target in cfg["pairs"]:
        pair_rows, (src_run, tgt_run) = run_pair(name, cfg, source, target)
        data = tgt_run.data.describe()
        s, t = sides.get(source, source), sides.get(target, target)
        labels = {"source": f"found and tested on {s}", "transferred": f"found on {s}, retrained on {t}",
                  "target_ticket": f"found on {t} (IMP there)", "transferred_reinit": f"random reinit of that mask on {t}"}
        series = {labels[k]: [{"level": r["level"], "remaining": r["remaining"], "acc": r[k]}
                              for r in pair_rows if r[k] is not None] for k in SERIES}
        tag = f"{source}_to_{target}"
        sample = ", 5,000-digit MNIST sample" if tgt_run.data.info["source"].startswith("sample") else ""
        title = f"{src_run.config.model.name}: ticket {s} → {t}{sample}"
        figures[f"Test accuracy against weights remaining ({s} → {t})"] = plots.by_remaining(
            series, out / f"accuracy_vs_remaining_{tag}.png", metric="acc", title=title)
        first = [r for r in pair_rows if r["replicate"] == 0]
        figures[f"Test accuracy against iterations, transferred tickets ({s} → {t})"] = plots.by_iteration(
            _transfer_histories(first), out / f"accuracy_vs_iterations_{tag}.png", title=title,
            branch=f"transferred ticket on {t}")
        figures[f"Test loss against iterations, transferred tickets ({s} → {t})"] = plots.by_iteration(
            _transfer_histories(first), out / f"loss_vs_iterations_{tag}.png", metric="test_loss",
            ylabel="test loss", title=title, branch=f"transferred ticket on {t}")
        figures[f"Test accuracy against iterations, ticket found on {s} ({s})"] = plots.by_iteration(
            histories(src_run.replicate(0)), out / f"accuracy_vs_iterations_{source}.png", title=f"{src_run.config.model.name}: IMP on {s}",
            branch=f"ticket found on {s}")
        all_rows += pair_rows
    write_csv(out / "results.csv", [{k: v for k, v in r.items() if k != "history"} for r in all_rows])
    table = []
    for pair in dict.fromkeys(r["pair"] for r in all_rows):
        for level in sorted({r["level"] for r in all_rows if r["pair"] == pair}):
            at = [r for r in all_rows if r["pair"] == pair and r["level"] == level]
            row = {"pair": pair, "level": level, "remaining": 100 * np.mean([r["remaining"] for r in at])}
            for k in SERIES:
                vals = [r[k] for r in at if r[k] is not None]
                row[k] = interval(vals).text(100.0) if vals else None
            diff = paired({r["replicate"]: r["transferred"] for r in at if r["transferred"] is not None},
                          {r["replicate"]: r["transferred_reinit"] for r in at if r["transferred_reinit"] is not None})
            row["transferred_minus_reinit"] = diff.text(100.0) if diff else None
            for k in ("mask_overlap", "mask_overlap_chance"):
                vals = [r[k] for r in at if r[k] is not None]
                row[k] = float(np.mean(vals)) if vals else None
            table.append(row)
    columns = {"pair": ("source → target", "{}"), "level": ("level", "{}"), "remaining": ("weights remaining %", "{:.1f}"),
               "source": ("on source %", "{}"), "transferred": ("transferred %", "{}"),
               "target_ticket": ("found on target %", "{}"), "transferred_reinit": ("reinit on target %", "{}"),
               "transferred_minus_reinit": ("transferred - reinit, paired (points)", "{}"),
               "mask_overlap": ("mask overlap with target's ticket (Jaccard)", "{:.3f}"),
               "mask_overlap_chance": ("chance overlap", "{:.3f}")}
    c = run_config(cfg, cfg["pairs"][0][0])
    what = (f"{cfg.get('description', '')}\n\nModel `{c.model.name}`, {c.pruning.strategy} pruning "
            f"({_rates(src_run.plan.strategy)}), rewind to {c.pruning.rewind}, "
            f"{c.training.steps} per level, {c.plan.replicates} replicate(s). Accuracies are test accuracy at the "
            f"early-stopping iteration: mean ± the half-width of the 95% t interval over replicates. Transfers are branches of the source run's levels (`transfer-<hash>/`); "
            f"sides: " + "; ".join(f"`{k}` = {v}" for k, v in sides.items()) + ".")
    write_report(out, f"{name}: ticket transfer", what, data, markdown_table(table, columns), figures)
    all_rows = [{k: v for k, v in r.items() if k != "history"} for r in all_rows]
    return {"rows": all_rows, "table": table, "data": data, "figures": [str(p) for p in figures.values()],
            "tickets": sorted({r["ticket"] for r in all_rows if r["ticket"]})}
