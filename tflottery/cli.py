"""The `tflottery` command line (fire): thin wrappers over the public API, no logic of its own."""
from __future__ import annotations

import json
import sys
from typing import Optional

import fire

from tflottery.config import ConfigError, RunConfig, apply_flag, describe_flags


def _run_config(flags: dict) -> RunConfig:
    tree: dict = {}
    for key, value in flags.items():
        apply_flag(tree, key, value)
    return RunConfig.from_dict(tree).validate()


def find(dry_run: bool = False, replicates: int = 1, **flags):
    """Run iterative magnitude pruning with rewinding; resumes a run that already has finished levels.

    --dry_run prints the planned weights remaining per layer and level without training.
    --replicates=N runs replicates 0..N-1 (seeds differ) of the same configuration.
    Every config field is a flag (field names are unique; dotted paths like --training.steps also work):
    """
    from tflottery.lottery import find_ticket

    config = _run_config(flags)
    if dry_run:
        plan = find_ticket(config, dry_run=True)
        print(f"{plan.levels} levels, {plan.steps} steps per level, rewind to step {plan.rewind_step}")
        print(plan.table())
        return None
    paths = []
    for replicate in range(replicates):
        config.replicate = replicate
        run = find_ticket(RunConfig.from_dict(config.to_dict()))
        print(json.dumps(run.summary()[-1]))
        paths.append(str(run.path))
    return paths[0] if replicates == 1 else paths


find.__doc__ += "\n" + describe_flags()


def transfer(ticket: str, seed: int = 0, runs_dir: str = "runs", **flags):
    """Retrain a ticket from its rewind weights on other data, labels or optimizer (Morcos et al. 2019).

    Data and training flags override the ticket's own: --labels='[5,6,7,8,9]', --dataset=fashion_mnist,
    --optimizer=sgd --lr=0.05 --momentum=0.9, --steps=2ep. Writes a run directory; prints its summary.
    """
    from tflottery.retrain import transfer as run_transfer
    from tflottery.tickets import read_ticket, ticket_config

    found = ticket_config(read_ticket(ticket)[0]).to_dict()
    tree = {"data": found["data"], "training": found["training"]}
    for key, value in flags.items():
        apply_flag(tree, key, value)
    config = RunConfig.from_dict(tree).validate()
    run = run_transfer(ticket, config.data, config.training, seed=seed, runs_dir=runs_dir)
    print(json.dumps(run.summary()))
    return str(run.path)


def export(run: str, level: Optional[int] = None, out: Optional[str] = None, branch: str = "ticket"):
    """Export level LEVEL (default: the last finished) of run directory RUN as a ticket (default: saved_tickets/)."""
    from tflottery.tickets import export_ticket

    return str(export_ticket(run, level, out, branch))


def convert(ticket: str, modes: str = "float,sparse,int8", representative: Optional[str] = None,
            qat_steps: int = 0, block_sparse: bool = False, out: Optional[str] = None, min_agreement: float = 0.95):
    """Convert a ticket to TFLite and verify every file with the LiteRT interpreter (see convert.json).

    --modes: comma list of float (dense float32), sparse (float32 + EXPERIMENTAL_SPARSITY),
      int8 (full-integer post-training quantization, sparse encoding).
    --representative: an .npz with an array `x` (uint8 images) for int8 calibration when the
      ticket's own dataset cannot be loaded here.
    --qat_steps=N: prune-preserving quantization-aware fine-tuning for N steps before int8.
    --block_sparse: fine-tune into block sparsity ((4,1) float, (16,1) int8) before converting.
    --min_agreement: a file agreeing with its Keras model on fewer test examples is kept only as
      <mode>.rejected.tflite.
    """
    from tflottery.tflite import convert as run_convert

    return run_convert(ticket, modes=modes.split(",") if isinstance(modes, str) else list(modes),
                       representative=representative, qat_steps=qat_steps, block_sparse=block_sparse, out=out,
                       min_agreement=min_agreement)


def plot(*runs: str, out: str = "plot.png", metric: str = "early_stop_test_accuracy"):
    """Test accuracy against weights remaining for one or more run directories on one figure."""
    from tflottery.plots import plot_runs

    if not runs:
        raise ConfigError("plot needs at least one run directory: tflottery plot runs/<name> [runs/<other>] --out=fig.png")
    return str(plot_runs(list(runs), out, metric))


def recipes():
    """List the recipes (run one with `python -m tflottery.recipes.NAME`, --help for its flags)."""
    import tomllib

    from tflottery.recipes.common import RECIPES, recipe_path

    for name in RECIPES:
        with open(recipe_path(name), "rb") as f:
            print(f"{name:<14} {tomllib.load(f)['description']}")


def data(data_dir: Optional[str] = None):
    """List the datasets and whether each can be had offline here."""
    from tflottery.data import list_datasets

    for row in list_datasets(data_dir):
        print(f"{row['dataset']:<14} offline: {row['offline']}")


def models():
    """List the model zoo."""
    from tflottery.models import MODELS

    for name, builder in MODELS.items():
        print(f"{name:<14} {(builder.__doc__ or '').strip().splitlines()[0]}")


def tune(**kwargs):
    """Sweep IMP hyperparameters with keras-tuner; see `tflottery.tuning.tune` for the flags."""
    from tflottery.tuning import tune as run_tune

    return run_tune(**kwargs)


COMMANDS = {"find": find, "transfer": transfer, "export": export, "convert": convert, "plot": plot,
            "recipes": recipes, "data": data, "models": models, "tune": tune}


def fire_args(argv: Optional[list]) -> list:
    """Commands take **flags, so fire would pass --help to them as a flag: hand it to fire instead."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args and any(a in ("--help", "-h") for a in args):
        args = [a for a in args if a not in ("--help", "-h")] + ["--", "--help"]
    return args


def run_fire(component, name: str, argv: Optional[list] = None) -> None:
    """Fire over `component`; a bad value or missing file is one line on stderr and exit 2, not a traceback."""
    from tflottery.config import TicketError
    from tflottery.data import DataUnavailableError

    try:
        fire.Fire(component, command=fire_args(argv), name=name)
    except (ConfigError, TicketError, DataUnavailableError, FileNotFoundError) as error:
        print(f"tflottery: error: {error}", file=sys.stderr)
        sys.exit(2)


def main(argv: Optional[list] = None) -> None:
    run_fire(COMMANDS, "tflottery", argv)


if __name__ == "__main__":
    main()
