"""The early-bird recipe: early-bird tickets (You et al. 2020) against IMP tickets at the same fractions."""
from __future__ import annotations

import copy
from pathlib import Path

from tflottery import plots
from tflottery.config import RunConfig
from tflottery.api import find_ticket
from tflottery.core.files import write_csv
from tflottery.recipes.settings import run_config
from tflottery.report import markdown_table, write_report


def run(name: str, cfg: dict, out: Path) -> dict:
    base = run_config(cfg)
    targets = sorted(cfg["targets"], reverse=True)
    imp_config = RunConfig.from_dict(copy.deepcopy(base.to_dict()))
    imp_config.plan.levels, imp_config.plan.target_remaining = None, min(targets)
    imp = find_ticket(imp_config)
    rows, histories, draws = [], {}, {}
    for target in targets:
        config = RunConfig.from_dict(copy.deepcopy(base.to_dict()))
        config.plan.levels, config.plan.target_remaining = None, target
        config.pruning.strategy = "early_bird"
        config.pruning.settings.update(early_bird_window=cfg["window"], early_bird_threshold=cfg["threshold"],
                                       early_bird_every=cfg["every"],
                                       early_bird_distance=cfg.get("distance", "jaccard"))
        bird = find_ticket(config)
        rep, level = bird.replicate(0), bird.plan.levels[-1]
        dense, ticket = rep.metrics(0), rep.metrics(level)
        imp_ticket = imp.replicate(0).metrics(level)  # the same plan: level L has the same counts
        spe, steps = imp.data.steps_per_epoch, imp.plan.steps
        drawn = dense["early_bird"]
        rows.append({"target": 100 * target, "level": level, "remaining": 100 * ticket["remaining"],
                     "imp_accuracy": 100 * imp_ticket["early_stop_test_accuracy"],
                     "imp_steps": steps + level * (steps - imp.plan.rewind_step),
                     "bird_accuracy": 100 * ticket["early_stop_test_accuracy"],
                     "bird_steps": drawn["dense_steps"] + (steps - imp.plan.rewind_step),
                     "drawn_epoch": drawn["drawn_step"] / spe if drawn["drawn"] else None,
                     "dense_accuracy": 100 * dense["final_test_accuracy"]})
        histories[f"target {100 * target:g}%"] = [{"step": h["step"], "distance": h["distance"]}
                                                  for h in drawn["history"] if h["distance"] is not None]
        draws[f"target {100 * target:g}%"] = drawn["drawn_step"] if drawn["drawn"] else None
    write_csv(out / "results.csv", rows)
    figure = plots.mask_distance(histories, imp.data.steps_per_epoch, cfg["threshold"], out / "mask_distance.png",
                                 cfg.get("distance", "jaccard"), draws)
    columns = {"target": ("target remaining %", "{:g}"), "remaining": ("remaining %", "{:.1f}"),
               "imp_accuracy": ("IMP ticket acc %", "{:.2f}"), "imp_steps": ("IMP steps", "{:,}"),
               "bird_accuracy": ("early-bird ticket acc %", "{:.2f}"), "bird_steps": ("early-bird steps", "{:,}"),
               "drawn_epoch": ("drawn at epoch", "{:.1f}")}
    t = base.training
    what = (f"{cfg['description']}\n\n`{base.model.name}` on `{imp.data.info['dataset']}`, layerwise magnitude pruning, "
            f"{t.optimizer} lr {t.lr}, batch {t.batch_size}, {t.steps} ({imp.plan.steps} steps) per level. The IMP "
            "ticket at level L costs the dense run plus L retrainings; the early-bird ticket costs the dense run up "
            f"to the draw plus one training. Rule: window {cfg['window']}, threshold {cfg['threshold']}, a mask every "
            f"{cfg['every']}, distance {cfg.get('distance', 'jaccard')}.")
    write_report(out, f"{name}: early-bird tickets against IMP", what, imp.data.describe(),
                 markdown_table(rows, columns), {"Mask distance between consecutive draws": figure})
    return {"rows": rows, "runs": [str(imp.path)], "figures": [str(figure)], "tickets": [],
            "data": imp.data.describe()}
