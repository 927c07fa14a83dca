"""The `tflottery` commands: thin wrappers over the public API, no logic of their own.

Each command reads its own arguments strictly (a boolean is true or false, never a word
taken as true) and checks every config flag before TensorFlow loads.
"""
from __future__ import annotations

import json
import sys
from typing import Optional

from tflottery.config import SECTIONS, apply_flag, config_from_flags, describe_flags, merge_flags
from tflottery.core.errors import ConfigError, RunError
from tflottery.core.stats import STABLE_PP
from tflottery.core.values import as_bool, as_float, as_literal_true


def _config_flag(name: str) -> None:
    apply_flag({}, name, None)


def _find_flag(name: str) -> None:
    """find takes config flags and the executor's options (--executor.<option>, checked with the executor)."""
    if not name.startswith("executor."):
        _config_flag(name)


def _target_flag(name: str) -> None:
    """transfer takes data and training flags only (and the executor's options)."""
    if name.startswith("executor."):
        return
    section = name.split(".")[0] if "." in name else next(
        (s for s, c in SECTIONS.items() if name in c.__dataclass_fields__), None)
    if section not in ("data", "training"):
        raise ConfigError(f"transfer takes data and training flags (--labels, --dataset, --optimizer, --lr, --steps, "
                          f"...); --{name} " + (f"belongs to {section}, which the ticket fixed when it was found."
                                                if section else "is no such flag."))
    _config_flag(name)


def _checked_config(flags: dict):
    """The RunConfig of `flags`, every kind it names resolved: before TensorFlow loads."""
    from tflottery.engine.resolve import check

    config = config_from_flags(flags)
    check(config)
    return config


def find(*, dry_run: bool = False, executor: str = "local", ray_address: Optional[str] = None, lease: float = 300,
         tries: int = 2, retry_failed: bool = False, **flags):
    """Run iterative magnitude pruning with rewinding, extending the run of this configuration.

    More --levels train only the new levels, another --branches entry only that branch, more
    --replicates only the new replicates; a killed run resumes where it stopped. Other processes
    may train the run at once (`tflottery worker`): each unit trains once, in one of them.
    --dry_run prints the planned weights remaining per layer and level, and the run directory, without training.
    --executor=processes trains groups of units in a pool of processes on this machine
    (--executor.processes=N, default its cores); --executor=ray as tasks on a Ray cluster
    (--executor.address, e.g. auto or ray://head:10001; default: a local one; --executor.connect_timeout=60:
    seconds the address has to answer; pip install 'tflottery[ray]');
    this process writes the run. --ray_address is the deprecated spelling of --executor.address.
    A unit that fails --tries times (default 2) is marked failed and skipped, and find exits non-zero naming it
    (`tflottery status RUN` shows its error); --retry_failed tries such units again. --lease=S (default 300): a
    process training a unit renews its lease every S/10 seconds; one that stops renewing for S seconds loses the
    unit to another process (set it above the file system's own lock recovery: NFSv4 90 s, Lustre about 150 s).
    Every config field is a flag (field names are unique; dotted paths like --training.steps also work);
    the chosen strategy's own settings are flags too (`tflottery find --strategy=global --help`):
    """
    options = _executor_flags(flags)
    config = _checked_config(flags)
    from tflottery.engine.executors import options_dict

    options = options_dict(executor, options, ray_address)
    from tflottery.api import find_ticket, plan_ticket
    from tflottery.engine.run import describe_plan

    if as_bool(dry_run, "dry_run"):
        plan = plan_ticket(config)
        print(describe_plan(plan))
        print(f"run directory: {plan.run_dir}")
        return None
    run = find_ticket(config, executor=executor, executor_options=options, lease=lease, tries=tries,
                      retry_failed=retry_failed)
    return _report(run)


def _executor_flags(flags: dict) -> dict:
    """The --executor.<option> flags, taken out of `flags`."""
    return {name.split(".", 1)[1]: flags.pop(name) for name in list(flags) if name.startswith("executor.")}


def _report(run) -> str:
    for row in run.summary():
        if row["branch"] == "ticket" and row["level"] == run.plan.levels[-1]:
            print(json.dumps(row))
    from tflottery.api import verdict

    print(verdict(run).text())
    return str(run.path)


def worker(run: Optional[str] = None, *, wait: float = 3600, check_locks: Optional[str] = None, hold: float = 0,
           create: bool = False, lease: float = 300, tries: int = 2, retry_failed: bool = False, **flags):
    """Train units of one run beside any other workers and finds of it, on this machine or on others that
    share the runs folder: RUN (a run directory) or the same flags as `find`. A worker claims ready units
    (as many as one population program holds), trains them, stores them, and repeats until the run is
    finished; it waits for units others hold, and stops with a message after --wait seconds (default
    3600) in which no unit finished anywhere. Killed at any moment (kill -9 included), it frees its
    units for the others. Any number of workers write the files one `find` would write.
    --check_locks=DIR checks DIR's file system (atomic renames, locks that exclude and that a killed
    process releases) and trains nothing; with --hold=S it keeps a lock S seconds so that the same
    check on another machine meanwhile shows the lock reaches it. `tflottery status RUN` shows who holds what.
    Its --runs_dir must exist (a node without the shared folder would train a private copy): one line
    otherwise; --create makes it. A worker stopped but alive (SIGSTOP, a hung node) loses its units after
    --lease seconds (default 300) without renewing; --tries and --retry_failed as for `find`.
    """
    wait, hold = as_float(wait, "--wait", 0.0), as_float(hold, "--hold", 0.0)
    if check_locks is not None:
        from tflottery.core.files import check_locks as check

        for line in check(check_locks, hold):
            print(line)
        print(f"{check_locks}: workers can share runs here")
        return None
    if run is not None and flags:
        raise ConfigError(f"worker: give a run directory ({run}) or the flags of `find` ({sorted(flags)}), not both: "
                          "a run directory carries its configuration.")
    if run is None and not flags:
        raise ConfigError("worker: name the run, as a run directory (tflottery worker runs/<name>) or with the flags "
                          "of the `find` that makes it (tflottery worker --levels=5 ...).")
    source = run if run is not None else _checked_config(flags)  # first: Keras 3's backend before tfmot loads it
    from tflottery.api import run_worker

    return _report(run_worker(source, wait=wait, create=as_bool(create, "create"), lease=lease, tries=tries,
                              retry_failed=retry_failed))


def status(run: str):
    """Where run directory RUN stands, from its files alone: units done, running (by which host and process),
    ready (nothing holds them: start a worker) and waiting (for units still to finish). Reads only."""
    from tflottery.api import run_status
    from tflottery.engine.graph import status_text

    report = run_status(run)
    print(status_text(report))
    print(json.dumps(report))
    return None


def verify(run: str):
    """Check every finished unit of run directory RUN against its manifest (each file's size and sha256) and name
    the damaged ones: `tflottery find` (or a worker) retrains them. Reads only; exits 2 when any is damaged."""
    from tflottery.api import verify_run

    report = verify_run(run)
    for unit in report["damaged"]:
        print(f"damaged {unit['unit']}: {unit['problem']}")
    checked = report["units"] - report["unverified"]
    print(f"{report['run']}: {checked} of {report['units']} finished units checked against their manifests"
          + (f" ({report['unverified']} written by tflottery 0.3, without one)" if report["unverified"] else ""))
    if report["damaged"]:
        raise RunError(f"{len(report['damaged'])} damaged unit(s) in {report['run']}: `tflottery find` with the run's "
                       f"flags, or `tflottery worker {report['run']}`, retrains them.")
    return None


def _find_help(args: list) -> str:
    from tflottery.core.runner import flag_values
    from tflottery.engine.resolve import settings_help

    values = flag_values(args)
    try:
        from fire.parser import DefaultParseValue

        current = config_from_flags({k: DefaultParseValue(v) for k, v in values.items() if k != "dry_run"})
    except ConfigError:
        current = None  # help still prints, with the defaults
    given = current.pruning.settings if current is not None else None
    return (find.__doc__ or "") + "\n" + describe_flags(settings_help(values, given), current)


find.help_text = _find_help


def transfer(source: str, *, level: Optional[int] = None, replicate: int = 0, reinit: bool = True, seed: int = 0,
             head: str = "fresh", runs_dir: str = "runs", trust_code: bool = False, executor: str = "local",
             wait: float = 3600, queue: bool = False, **flags):
    """Retrain a ticket from its rewind weights on other data, labels or optimizer (Morcos et al. 2019).

    SOURCE is a run directory (--level, default its last, and --replicate pick the ticket) or a
    ticket directory. Data and training flags override the ticket's own, and every field not
    given is the source's (its dataset too): --labels='[5,6,7,8,9]', --dataset=fashion_mnist,
    --optimizer=sgd --lr=0.05 --momentum=0.9, --steps=2ep. The results are branches of the
    ticket's level (transfer-<hash>/), exportable like any branch.
    --reinit=false skips the control (the same mask from a fresh initialisation).
    --head: the target's output layer: fresh (default: new, unpruned, as Morcos et al.),
    fresh_pruned (new, randomly pruned to the ticket's output sparsity), reuse (the ticket's
    own, same class count only) or reuse_mask (its mask on fresh weights).
    Its units train in the one level loop: --executor and --executor.<option> as for `find`; the same
    command started in several processes (or machines sharing the runs folder) splits the units, each
    waiting up to --wait seconds for units the others hold. The transfer is recorded in the run's work
    queue, so `tflottery worker RUN` processes train its units too; --queue only records it.
    """
    options = _executor_flags(flags)
    for name in flags:
        _target_flag(name)
    tree = merge_flags(flags)
    from tflottery.engine.executors import options_dict

    options = options_dict(executor, options)
    from tflottery.api import transfer as run_transfer

    result = run_transfer(source, tree.get("data", {}), tree.get("training", {}), level=level, replicate=replicate,
                          reinit=as_bool(reinit, "reinit"), seed=seed, head=head, runs_dir=runs_dir,
                          trust_code=as_literal_true(trust_code, "trust_code"), executor=executor,
                          executor_options=options, wait=as_float(wait, "--wait", 0.0),
                          queue=as_bool(queue, "queue"))
    if as_bool(queue, "queue"):
        print(f"queued: start `tflottery worker {result.path}` to train it", file=sys.stderr)
    names = {key: ("ticket" if init == "rewind" else "reinit control") for init, key in result.branches.items()}
    for row in result.summary():
        print(json.dumps({**row, "is": names.get(row["branch"])}))
    return str(result.path)


def export(run: str, *, level: Optional[int] = None, out: Optional[str] = None, branch: str = "ticket",
           replicate: int = 0, overwrite: bool = False, shrink: bool = False):
    """Export level LEVEL (default: the last finished) of run directory RUN as a ticket (default: saved_tickets/).

    --branch exports a baseline or transfer branch (e.g. reinit, transfer-<hash>); --overwrite
    replaces an existing ticket at --out (never anything that is not a ticket); --shrink writes it as
    a smaller dense network, its removed channels deleted (a --structure=channels ticket).
    """
    from tflottery.tickets import export_ticket

    return str(export_ticket(run, level, out, branch=branch, replicate=replicate,
                             overwrite=as_bool(overwrite, "overwrite"), shrink=as_bool(shrink, "shrink")))


def convert(ticket: str, *, modes: str = "float,sparse,int8", representative: Optional[str] = None,
            qat_steps: int = 0, block_sparse: bool = False, out: Optional[str] = None, min_agreement: float = 0.95,
            finetune_steps: int = 300, trust_code: bool = False):
    """Convert a ticket to TFLite and verify every file with the LiteRT interpreter (see convert.json).

    --modes: comma list of float (dense float32), sparse (float32 + EXPERIMENTAL_SPARSITY),
      int8 (full-integer post-training quantization, sparse encoding where LiteRT runs it right),
      int8_qat (prune-preserving QAT first), block_float / block_int8 (a ticket found with
      --structure='{"block": [1, 4]}', its blocks checked).
    --representative: an .npz with an array `x` (uint8 images) for int8 calibration when the
      ticket's own dataset cannot be loaded here.
    --qat_steps=N: prune-preserving quantization-aware fine-tuning for N steps before int8.
    --block_sparse: add the block modes the ticket's blocks fit (1x4: block_float; 1x16: both).
    --min_agreement: a file agreeing with its Keras model on fewer test examples is kept only as
      <mode>.rejected.tflite.
    Each file's line gives size, accuracy, agreement, which kernels run its weights and whether it runs faster under the
    default interpreter (XNNPACK) or the builtin kernels (sparse ones included).
    """
    from tflottery.deploy import convert as run_convert

    run_convert(ticket, modes=modes, representative=representative, qat_steps=qat_steps,
                block_sparse=as_bool(block_sparse, "block_sparse"), out=out,
                min_agreement=as_float(min_agreement, "min_agreement", 0.0, 1.0), finetune_steps=finetune_steps,
                trust_code=as_literal_true(trust_code, "trust_code"))
    return None


def plot(*runs: str, out: str = "plot.png", metric: str = "early_stop_test_accuracy",
         branches: Optional[list] = None, untrained: bool = True):
    """Test accuracy (or --metric) against weights remaining for one or more run directories.

    The figure shows each run's ticket, its baselines and its dense network (mean and 95% band over
    replicates); --branches='["ticket","reinit"]' draws only those. Analyses get figures of their own
    beside --out: masks with no training and supermasks (_untrained; --untrained=false skips it),
    transfers (_transfer), instability (_instability_path, _instability_barrier).
    """
    from tflottery.analysis.registry import plot_runs

    if not runs:
        raise ConfigError("plot needs at least one run directory: tflottery plot runs/<name> [runs/<other>] --out=fig.png")
    if branches is not None and (not isinstance(branches, (list, tuple)) or not all(isinstance(b, str) for b in branches)):
        raise ConfigError(f"--branches={branches!r} must be a list of branch names, e.g. '[\"ticket\",\"reinit\"]'.")
    figures = plot_runs(list(runs), out, metric, branches, as_bool(untrained, "untrained"))
    for figure in figures[1:]:
        print(figure)
    return str(figures[0])


def recipes():
    """List the recipes (run one with `python -m tflottery.recipes.NAME`, --help for its flags)."""
    from tflottery.recipes.common import RECIPES, read_recipe

    for name in RECIPES:
        print(f"{name:<14} {read_recipe(name).get('description', '')}")


def data(*, data_dir: Optional[str] = None):
    """List the datasets and whether each can be had offline here, then the sources (--source)."""
    from tflottery.data import SOURCES, list_datasets

    for row in list_datasets(data_dir):
        print(f"{row['dataset']:<14} offline: {row['offline']}")
    print("sources (--source; auto tries those marked *, in order):")
    for name, source in SOURCES.items():
        print(f"  {name:<12}{'*' if source.auto else ' '} {source.description}")


def models():
    """List the model zoo."""
    from tflottery.models import MODELS

    for name, builder in MODELS.items():
        print(f"{name:<14} {(builder.__doc__ or '').strip().splitlines()[0]}")


def instability(run: str, *, level: int = 0, rewind: str = "0it", copies: int = 4, alphas: int = 30,
                threshold: float = STABLE_PP, replicate: int = 0, same_order: bool = False, train_examples: int = 10000,
                recapture: bool = False, out: Optional[str] = None, force: bool = False):
    """Linear mode connectivity (Frankle et al. 2020): is LEVEL of RUN stable to SGD noise at each rewind point?

    --level=0 is the dense network (any step its training kept: `find --capture=...`, or --recapture
    to replay it once); --level=L the IMP subnetwork at the run's own rewind step.
    --rewind: comma list of steps (0it,100it,500it,2ep). --copies (4: 6 pairs) trained side by side from
    each point with different batch orders; --alphas points on the line between each pair; the barrier
    is the mean over pairs with a 95% jackknife interval over the copies: stable when the whole interval
    is below --threshold points, unstable when above, else undecided. --out writes the two figures.
    """
    from tflottery.analysis.instability import instability as run_instability
    from tflottery.plots import instability_figures

    result = run_instability(run, level, rewind, copies=copies, alphas=alphas, threshold=threshold,
                             replicate=replicate, same_order=as_bool(same_order, "same_order"),
                             train_examples=train_examples, recapture=as_bool(recapture, "recapture"),
                             force=as_bool(force, "force"))
    for row in result.table():
        print(json.dumps(row))
    if out:
        for path in instability_figures(result.points, out, threshold):
            print(path)
    return None


def compare(*sources: str, out: Optional[str] = None, names: Optional[list] = None):
    """How much tickets' masks overlap (Jaccard, per layer and total, against chance) and how their kept
    weights moved (sign flips). SOURCES are ticket directories or run levels RUN@L[:branch][#replicate].
    --out draws the pairwise overlaps as a heat map, labelled by --names='["IMP 7%", ...]'."""
    from tflottery.analysis.compare import compare as run_compare

    result = run_compare(*sources, out=out, names=names)
    for p in result.pairs:
        layers = ", ".join(f"{k.split('/')[0]} {j:.3f} ({c:.3f})" for k, (j, c) in p["layers"].items())
        print(f"{p['a']}  vs  {p['b']}: Jaccard {p['jaccard']:.3f} (chance {p['chance']:.3f}); per layer: {layers}")
    for name, flips in result.sign_flips.items():
        print(f"{name}: {100 * flips:.1f}% of kept weights changed sign in training")
    return str(result.figure) if result.figure else None


def runs(*, runs_dir: str = "runs"):
    """List the runs in RUNS_DIR: what defines each (dataset, model, strategy, structure, rewind) and where it
    stands (levels finished per replicate of those planned, baselines, the last ticket's test accuracy,
    complete, partial or being written now). One JSON line per run after a readable table."""
    from tflottery.engine.run import list_runs

    rows = list_runs(runs_dir)
    if not rows:
        print(f"no runs in {runs_dir}")
        return None
    for row in rows:
        accuracy = row["last_accuracy"]
        shown = f"{100 * sum(accuracy) / len(accuracy):.2f}%" + (f" (mean of {len(accuracy)})" if len(accuracy) > 1
                                                                  else "") if accuracy else "-"
        remaining = f"{100 * row['last_remaining']:.1f}%" if row["last_remaining"] is not None else "-"
        done = ",".join(f"{n}" for n in row["levels_done"].values()) or "0"
        structure = row["structure"] if isinstance(row["structure"], str) else json.dumps(row["structure"])
        print(f"{row['run']}  {row['dataset']} {row['model']} {row['strategy']}/{structure} rewind {row['rewind']} seed {row['seed']}  "
              f"levels {done} of {row['levels_planned']}  last {remaining}: {shown}  "
              f"baselines {','.join(row['branches']) or '-'}  {row['state']}")
    for row in rows:
        print(json.dumps(row))
    return None


def summary(run: str, margin: float = 1.0):
    """The verdict of run directory RUN: per level and branch the mean and 95% interval over replicates of the
    early-stop test accuracy, final accuracy and early-stop iteration; the paired differences ticket - dense,
    ticket - reinit and ticket - random_prune; and one line naming the sparsest level at which the ticket
    matches dense (its paired interval above -MARGIN points, --margin, default 1) and beats both baselines
    (above 0), or why none does; fewer than 3 replicates give the numbers and no verdict. Also written to
    RUN's results.csv, summary.json and report.md (unless a process is writing the run)."""
    from tflottery.api import verdict

    print(verdict(run, margin=as_float(margin, "--margin", 0.0, hint="points of accuracy, e.g. 1.")).text())
    return None


def tune(*, oracle: str = "random", max_trials: int = 4, objective: str = "accuracy_at",
         target_remaining: float = 0.2, tolerance: float = 0.005, space: Optional[str] = None,
         directory: str = "runs/tuning", project: str = "imp", max_epochs: int = 4, overwrite: bool = False, **flags):
    """Sweep IMP hyperparameters with keras-tuner: each trial is one IMP run (an ordinary run directory).

    --oracle: random, bayesian or hyperband (its budget: epochs per level, up to --max_epochs).
    --max_trials: how many configurations to try.
    --objective: accuracy_at (test accuracy at the level nearest --target_remaining) or
      sparsest_within (the sparsest level within --tolerance of dense accuracy).
    --space: JSON {flag: [choices]} or {flag: {"min": a, "max": b, "log": true}}; default
      {"dense_rate": [0.2, 0.35, 0.5], "lr": [0.0003, 0.0012, 0.003]}.
    --directory, --project: where keras-tuner keeps its trial logs; --overwrite starts the sweep afresh.
    Every other flag sets the base configuration of every trial (below, with the values given).
    Trials train only the ticket: the objective reads nothing else.
    """
    from tflottery.tuning import tune as run_tune

    return run_tune(oracle=oracle, max_trials=max_trials, objective=objective, target_remaining=target_remaining,
                    tolerance=tolerance, space=space, directory=directory, project=project, max_epochs=max_epochs,
                    overwrite=as_bool(overwrite, "overwrite"), **flags)


def _tune_help(args: list) -> str:
    from fire.parser import DefaultParseValue

    from tflottery.core.runner import flag_values
    from tflottery.tuning import TUNE_OPTIONS

    values = {k: DefaultParseValue(v) for k, v in flag_values(args).items() if k not in TUNE_OPTIONS}
    try:
        current = config_from_flags(values)
    except ConfigError:
        current = None
    return (tune.__doc__ or "") + "\n" + describe_flags(None, current)


tune.help_text = _tune_help


def analyze(what: str, run: str, *, alphas: int = 11, train_examples: int = 10000, verbose: bool = False):
    """Analyses of a finished run that `find` does not compute. `tflottery analyze levels RUN`: the linear-path
    test-error barrier between the trained solutions of successive levels (level L masked to level L+1's mask,
    Paul et al. 2023), with the angle and distance between them, per pair of levels with its 95% interval over
    replicates; stored in the run (a second call measures only new levels) and drawn by `tflottery plot`
    (<out>_successive.png). --alphas: points on each path (default 11); --train_examples: the training subset
    the train-error barrier uses."""
    if what != "levels":
        raise ConfigError(f"analyze {what!r}: the analyses are: levels (the barrier between successive levels); "
                          "instability has its own command, `tflottery instability`.")
    from tflottery.analysis.successive import level_barriers, text
    from tflottery.core.values import as_bool

    rows = level_barriers(run, alphas, train_examples, verbose=as_bool(verbose, "verbose"))
    print(text(rows))
    return None


COMMANDS = {"find": find, "transfer": transfer, "export": export, "convert": convert, "plot": plot,
            "instability": instability, "compare": compare, "recipes": recipes, "data": data, "models": models,
            "tune": tune, "runs": runs, "summary": summary, "worker": worker, "status": status,
            "verify": verify, "analyze": analyze}


def _tune_flag(name: str) -> None:
    from tflottery.tuning import TUNE_OPTIONS

    if name not in TUNE_OPTIONS:
        _config_flag(name)


EXTRA_FLAGS = {find: _find_flag, transfer: _target_flag, tune: _tune_flag, worker: _config_flag}


def main(argv: Optional[list] = None) -> None:
    from tflottery import __version__
    from tflottery.core.runner import run_fire

    run_fire(COMMANDS, "tflottery", argv, EXTRA_FLAGS, version=__version__)

