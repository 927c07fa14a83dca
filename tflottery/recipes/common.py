"""The machinery behind every recipe: read `recipes/<name>.toml`, apply `--paper` and flags, run, report.

Two kinds of recipe:
* `imp`: iterative magnitude pruning with its baselines, over replicates (the paper's figures);
* `transfer`: find a ticket on a *source* side, retrain each level's ticket on the *target*
  side (other data, labels or optimizer), and compare with the ticket found on the target
  and with random reinitialisation there (Morcos et al. 2019).

IMP runs live in their own identity-named run directories, so a recipe run twice, or two
recipes sharing a side (task3's two directions), reuse every finished level instead of
retraining; transfers are branches of the source run's levels.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from tflottery.config import RunConfig, apply_flag
from tflottery.errors import ConfigError
from tflottery.files import write_json

RECIPE_KEYS = {"runs_dir", "tickets_dir", "description", "kind", "title", "pairs", "sides", "dense_points",
               "sparse_points", "sparse_level", "copies", "alphas", "targets", "window", "threshold", "every", "modes"}
RECIPES = ["task1", "task2", "task3", "fc1_mnist", "lenet5_mnist", "lenet_mnist", "conv_cifar10", "instability",
           "early_bird", "supermask", "deploy"]


# --------------------------------------------------------------------------- configuration
def recipe_path(name: str) -> Path:
    candidates = [Path(os.environ["TFLOTTERY_RECIPES"])] if "TFLOTTERY_RECIPES" in os.environ else []
    candidates += [Path(__file__).resolve().parents[2] / "recipes", Path(sys.prefix) / "share" / "tflottery" / "recipes"]
    for folder in candidates:
        if (folder / f"{name}.toml").exists():
            return folder / f"{name}.toml"
    raise ConfigError(f"No recipe {name!r}: looked for {name}.toml in {', '.join(map(str, candidates))}. "
                      f"Recipes: {', '.join(RECIPES)}.")


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def read_recipe(name: str) -> dict:
    with open(recipe_path(name), "rb") as f:
        return tomllib.load(f)


def load_recipe(name: str, paper: bool = False, overrides: "dict | None" = None) -> dict:
    """The recipe's settings: its TOML, then its [paper] table if `paper`, then `overrides`.

    An override key is a field name (`levels`, `lr`, `dataset`, `model`, ...) when that name is
    unique across the run's sections, or a dotted path (`target.data.labels`, `training.steps`).
    """
    cfg = read_recipe(name)
    paper_values = cfg.pop("paper", {})
    if paper:
        _merge(cfg, paper_values)
    cfg.setdefault("runs_dir", "runs")
    cfg.setdefault("tickets_dir", "saved_tickets")
    for key, value in (overrides or {}).items():
        _override(cfg, key, value)
    for side in [None, *cfg.get("sides", {})]:
        run_config(cfg, side).validate()
    return cfg


def _override(cfg: dict, key: str, value: Any) -> None:
    head = key.split(".")[0]
    if key in RECIPE_KEYS:
        cfg[key] = value
    elif "." in key and head in cfg.get("sides", {}):  # e.g. target.data.labels
        side, section, name = (key.split(".") + [None])[:3]
        apply_flag(cfg.setdefault(side, {}), f"{section}.{name}" if name else section, value)
    else:
        apply_flag(cfg.setdefault("run", {}), key, value)


def run_config(cfg: dict, side: "str | None" = None) -> RunConfig:
    merged = _merge(copy.deepcopy(cfg.get("run", {})), cfg.get(side, {}) if side else {})
    merged.update(runs_dir=cfg["runs_dir"])
    return RunConfig.from_dict(merged)


def recipe_dir(name: str, cfg: dict) -> Path:
    digest = hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return Path(cfg["runs_dir"]) / f"{name}-{digest}"


def device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU x{len(gpus)} ({gpus[0].name})" if gpus else "CPU"


# --------------------------------------------------------------------------- running
def run_recipe(name: str, paper: bool = False, verbose: bool = True, **overrides) -> dict:
    """Run recipe `name` and write results.json, results.csv, figures and report.md. Returns results."""
    cfg = load_recipe(name, paper, overrides)
    if not verbose:
        cfg.setdefault("run", {}).setdefault("training", {})["verbose"] = False
    out = recipe_dir(name, cfg)
    started = time.perf_counter()
    from tflottery.recipes import deploy_recipe, early_bird_recipe, imp_recipe, instability_recipe, transfer_recipe

    kinds = {"imp": imp_recipe.run, "transfer": transfer_recipe.run, "instability": instability_recipe.run,
             "early_bird": early_bird_recipe.run, "deploy": deploy_recipe.run}
    results = kinds[cfg.get("kind", "imp")](name, cfg, out)
    results.update(recipe=name, paper=paper, config=cfg, device=device(), wall_time_s=time.perf_counter() - started,
                   output=str(out))
    write_json(out / "results.json", results)
    print(f"[tflottery] {name}: results, figures and report.md in {out}/ ({results['wall_time_s'] / 60:.1f} min, "
          f"{results['device']})", flush=True)
    return results


def main_for(name: str):
    """The fire entry point of one recipe; every recipe field is a flag."""
    def main(paper: bool = False, verbose: bool = True, **overrides):
        return run_recipe(name, paper=paper, verbose=verbose, **overrides)["output"]

    description = read_recipe(name).get("description", "")
    main.__doc__ = (f"{description}\n\nFlags: --paper uses the published settings; any recipe field is a flag "
                    f"(--levels=3, --lr=0.001, --steps=2ep, --dataset=fashion_mnist, --target.data.labels='[5,6]'); "
                    f"--verbose=False for a quiet log. Settings: {recipe_path(name)}")
    return main


def cli(name: str) -> None:
    from tflottery.cli.runner import run_fire

    main = main_for(name)

    def check(flag: str) -> None:
        _override(load_recipe(name), flag, None)

    run_fire(main, f"python -m tflottery.recipes.{name}", extra_flags={main: check})
