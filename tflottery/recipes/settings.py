"""Recipe settings: read `recipes/<name>.toml`, apply `--paper` and flags, give each side's RunConfig."""
from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from tflottery.config import RunConfig, apply_flag
from tflottery.core.errors import ConfigError

RECIPE_KEYS = {"runs_dir", "tickets_dir", "description", "kind", "title", "pairs", "sides", "dense_points",
               "sparse_points", "sparse_level", "copies", "alphas", "targets", "window", "threshold", "every", "distance",
               "modes", "rewinds"}
RECIPES = ["task1", "task2", "task3", "fc1_mnist", "lenet5_mnist", "lenet_mnist", "conv_cifar10", "instability",
           "early_bird", "supermask", "deploy", "baselines", "baselines_layerwise", "dst", "vit_fashion_mnist",
           "text_query_count"]


KINDS = ("imp", "transfer", "instability", "early_bird", "deploy", "baselines", "rewinds")


def recipe_path(name: str) -> Path:
    from tflottery.core.names import safe_component

    safe_component(name, "recipe")
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
    path = recipe_path(name)
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text (TOML files are UTF-8): save it as UTF-8.") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML ({error}): fix the line it names.") from None
    if "kind" not in cfg:
        raise ConfigError(f"{path} names no kind: write kind = \"imp\" (or one of {', '.join(KINDS)}) at its top.")
    if cfg["kind"] not in KINDS:
        raise ConfigError(f"{path}: kind={cfg.get('kind')!r} is unknown: recipes are of kind {', '.join(KINDS)}.")
    sides = set(cfg.get("sides") if isinstance(cfg.get("sides"), dict) else ())
    pairs = cfg.get("pairs") if isinstance(cfg.get("pairs"), list) else []
    sides |= {side for pair in pairs if isinstance(pair, list) for side in pair if isinstance(side, str)}
    unknown = sorted(set(cfg) - RECIPE_KEYS - {"run", "paper"} - sides)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}: a recipe holds {', '.join(sorted(RECIPE_KEYS))}, the "
                          "[run] and [paper] tables and one table per side of a transfer (a misspelt key would be "
                          "ignored).")
    return cfg


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
    from tflottery.engine.resolve import check

    for side in [None, *cfg.get("sides", {})]:
        check(run_config(cfg, side).validate())
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


