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

import time

from tflottery.core.files import write_json
from tflottery.recipes.settings import RECIPES, _override, device, load_recipe, read_recipe, recipe_dir, recipe_path

__all__ = ["RECIPES", "cli", "load_recipe", "main_for", "read_recipe", "run_recipe"]


# --------------------------------------------------------------------------- running
def run_recipe(name: str, paper: bool = False, verbose: bool = True, **overrides) -> dict:
    """Run recipe `name` and write results.json, results.csv, figures and report.md. Returns results."""
    cfg = load_recipe(name, paper, overrides)
    if not verbose:
        cfg.setdefault("run", {}).setdefault("training", {})["verbose"] = False
    out = recipe_dir(name, cfg)
    started = time.perf_counter()
    from tflottery.recipes import (baselines_recipe, deploy_recipe, early_bird_recipe, imp_recipe, instability_recipe,
                                   rewinds_recipe, transfer_recipe)

    kinds = {"imp": imp_recipe.run, "transfer": transfer_recipe.run, "instability": instability_recipe.run,
             "early_bird": early_bird_recipe.run, "deploy": deploy_recipe.run, "baselines": baselines_recipe.run,
             "rewinds": rewinds_recipe.run}
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
    main.help_text = lambda args: recipe_help(name, main.__doc__, args)
    return main


def recipe_help(name: str, doc: str, args: list) -> str:
    """The recipe's description and every setting with the value this command line would run with
    (`--paper` and the other flags applied)."""
    from fire.parser import DefaultParseValue

    from tflottery.core.runner import flag_values

    values = {k: DefaultParseValue(v) for k, v in flag_values(args).items()}
    paper = "--paper" in args or bool(values.pop("paper", False))
    values.pop("verbose", None)
    cfg = load_recipe(name, paper, values)
    lines = [doc, "", f"Settings this command runs with ({'--paper, ' if paper else ''}"
                      f"{'your flags, ' if values else ''}{recipe_path(name).name}):"]
    lines += [f"  --{key}={value!r}" for key, value in _flat(cfg) if key != "description"]
    return "\n".join(lines)


def _flat(tree: dict, prefix: str = "") -> list:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def cli(name: str) -> None:
    from tflottery.core.runner import one_line_errors, run_fire

    with one_line_errors():  # a recipe file that cannot be read is one line too
        main = main_for(name)

    def check(flag: str) -> None:
        _override(load_recipe(name), flag, None)

    run_fire(main, f"python -m tflottery.recipes.{name}", extra_flags={main: check})
