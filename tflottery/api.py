"""The verbs: find a ticket, plan one, transfer one. Each checks its arguments, then calls the floors below."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from tflottery.config import DataConfig, RunConfig, TrainingConfig, build
from tflottery.core.errors import ConfigError, RunError, TicketError
from tflottery.core.values import as_bool, as_float, as_int, as_literal_true
from tflottery.engine.leases import LEASE_S, TRIES, WAIT_S, Sharing
from tflottery.engine.store import LevelRecord, RunStore

if TYPE_CHECKING:
    from tflottery.engine.run import Run


def _config(config) -> RunConfig:
    if config is not None and not isinstance(config, (dict, RunConfig)):
        raise ConfigError(f"config must be a RunConfig or a dict of its sections, got {type(config).__name__}.")
    return RunConfig.from_dict(config).validate()


def _keras_backend_of(run: "str | Path") -> None:
    """Validate the run directory's configuration before the engine loads: a --keras=3 run's backend then
    reaches Keras 3 before tfmot loads it (a folder that is not a run is left to the call's own errors)."""
    if not isinstance(run, (str, Path)):
        return
    try:
        RunStore.open(run).run_config().validate()
    except (OSError, ValueError, RunError, KeyError):
        pass


def _callbacks(callbacks) -> tuple:
    from tflottery.core.keras_compat import keras

    if not isinstance(callbacks, (list, tuple)) or not all(isinstance(c, keras.callbacks.Callback) for c in callbacks):
        raise ConfigError(f"callbacks={callbacks!r} must be a list of tf_keras callbacks (keras.callbacks.Callback).")
    return tuple(callbacks)


def find_ticket(config: "RunConfig | dict | None" = None, *, model=None, data=None, callbacks: tuple = (),
                executor: str = "local", executor_options: Optional[dict] = None,
                ray_address: Optional[str] = None, dry_run: bool = False, lease: float = LEASE_S, tries: int = TRIES,
                retry_failed: bool = False) -> Run:
    """Run IMP as configured, extending the run directory of this configuration where it exists.

    More levels train only the new levels, another branch only that branch, more replicates
    only the new replicates; a killed run resumes at the first unfinished branch. `model` may
    be any Sequential/Functional tf_keras model (default: the zoo's `config.model.name`; each
    replicate re-seeds its initialisers), a Keras 3 one, or the code that builds a subclassed
    model (its class, or a function: `model=MyModel`, `model=lambda: MyModel(width=64)`), from
    which every copy is built (`tflottery.models.built`). `data` may be numpy arrays, `(x, y)`. `plan_ticket` gives the plan without training.
    Other processes may train the same run at once (`run_worker`): each unit trains once.
    `executor` says where groups of units train: "local" (this process), "processes" (a pool on
    this machine, `executor_options={"processes": N}`), "ray" (tasks on a Ray cluster,
    `executor_options={"address": ...}`; default: a local one; `pip install 'tflottery[ray]'`).
    `ray_address` is the deprecated spelling of `executor_options={"address": ...}`. `dry_run=True` trains
    nothing and returns `plan_ticket`'s plan, as `tflottery find --dry_run` prints it. `lease`: seconds a process
    training a unit may go without renewing its lease before another takes the unit over
    (`tflottery.engine.leases`); `tries`: failures before a unit is marked failed and skipped (then a RunError
    names it); `retry_failed`: clear those marks first.
    """
    if as_bool(dry_run, "dry_run"):
        return plan_ticket(config, model=model, data=data)
    sharing = _sharing(lease=lease, tries=tries, retry_failed=retry_failed)
    config = _config(config)  # first: a Keras 3 backend is chosen before the engine loads Keras 3
    from tflottery.engine.executors import options_dict

    executor_options = options_dict(executor, executor_options, ray_address)
    from tflottery.engine.run import find

    run = find(config, model, _data(data, config), _callbacks(callbacks), executor=executor,
               executor_options=executor_options, sharing=sharing)
    write_verdict(run.store)
    return run


def _sharing(wait: float = WAIT_S, lease: float = LEASE_S, tries: int = TRIES, retry_failed: bool = False,
             announce: bool = False) -> Sharing:
    return Sharing(as_float(wait, "wait", 0.0, hint="seconds to wait for units other processes hold, e.g. 3600."),
                   as_float(lease, "lease", 1.0, hint=f"seconds a holder may go without renewing, e.g. {LEASE_S:g}."),
                   as_int(tries, "tries", 1, 100), as_bool(retry_failed, "retry_failed"), announce).check()


def run_worker(source: "str | Path | RunConfig | dict", *, wait: float = WAIT_S, model=None, data=None,
               callbacks: tuple = (), create: bool = False, lease: float = LEASE_S, tries: int = TRIES,
               retry_failed: bool = False) -> Run:
    """Train units of a run beside any other processes training it (on this machine or others sharing the
    folder): `source` is the run's directory or its configuration. Claims ready units (a population's
    worth at a time), trains them, and repeats until the run is finished, waiting for units others hold
    (a RunError after `wait` seconds in which no unit finished). Any number of workers write exactly the
    files one `find_ticket` would (wall times apart); a worker killed at any moment frees its units, one stuck
    loses them after `lease` seconds. Its runs folder must exist (a worker on a node without the shared folder would
    train a private copy); `create=True` makes it. `tries`, `retry_failed`: as `find_ticket`'s."""
    sharing = _sharing(wait, lease, tries, retry_failed, announce=True)
    expected = None
    if isinstance(source, (str, Path)):
        store = RunStore.open(source)
        config = store.run_config().validate()
        expected = store.path
        if Path(config.runs_dir).resolve() != store.path.parent.resolve():  # started elsewhere: the folder it is in
            config.runs_dir = str(store.path.parent)
        if model is None and config.model.architecture is not None:  # a user's own model: its stored architecture
            from tflottery.engine.run import stored_model

            model = stored_model(store)
    else:
        config = _config(source)
        if not as_bool(create, "create") and not Path(config.runs_dir).is_dir():
            raise RunError(f"runs_dir={config.runs_dir!r} is not a folder here: a worker trains runs in an existing "
                           "runs folder (is the shared folder mounted on this node?); pass --create to make it.")
    from tflottery.engine.run import find

    run = find(config, model, _data(data, config), _callbacks(callbacks), sharing=sharing, expected=expected)
    write_verdict(run.store)
    return run


def run_status(run: "str | Path") -> dict:
    """Where a run stands, from its directory alone: units done / running (by which host and process) /
    ready / waiting (`tflottery.engine.graph.status`)."""
    from tflottery.engine.graph import status

    return status(run)


def verify_run(run: "str | Path") -> dict:
    """Check every committed unit of a run against its manifest (each file's size and sha256): {"run", "units" (how
    many were checked), "unverified" (0.3's units, written without a manifest), "damaged": [{"unit", "problem"}]}.
    Reads only; `find_ticket` or a worker retrains the damaged units."""
    from tflottery.engine.graph import unit_name

    store = RunStore.open(run)
    committed = [(r, level, branch) for r in store.replicates() for level in store.replicate(r).level_numbers()
                 for branch in store.replicate(r).branches(level)]
    damaged = [{"unit": unit_name(r, level, branch), "problem": problem}
               for r, level, branch, problem in store.damaged(full=True)]
    unverified = sum(not (store.replicate(r).level_dir(level, branch) / "manifest.json").exists()
                     for r, level, branch in committed)
    return {"run": str(store.path), "units": len(committed), "unverified": unverified, "damaged": damaged}


def verdict(run: "str | Path | object", margin: float = 1.0):
    """The verdict of a run (a directory or a `Run`): per level and branch the mean and 95% interval over
    replicates of the early-stop and final test accuracy and early-stop iteration, the paired
    differences ticket - dense, ticket - reinit and ticket - random_prune, and the line naming the sparsest
    level at which the ticket matches dense (the paired interval above -`margin` points of accuracy) and beats
    both (above 0), given at least 3 replicates (`tflottery.analysis.verdict`). Written to the run's
    results.csv, summary.json and report.md unless another process is writing the run."""
    from tflottery.engine.store import RunStore

    margin = as_float(margin, "margin", 0.0, 50.0, hint="points of accuracy, e.g. 1.")
    store = getattr(run, "store", None) or RunStore.open(run)
    return write_verdict(store, if_free=True, margin=margin / 100)


def write_verdict(store, if_free: bool = False, margin: Optional[float] = None):
    """Compute the verdict of `store` and write it (if_free: only when no process holds the run; `margin`: a
    fraction of accuracy, default the verdict's 1 point)."""
    from tflottery.analysis.verdict import MARGIN
    from tflottery.analysis.verdict import verdict as make_verdict

    result = make_verdict(store.summary(), MARGIN if margin is None else margin)
    if if_free and store.holder() is not None:
        return result
    config = store.config()
    pruning, plan = config.get("pruning", {}), config.get("plan", {})
    what = (f"`{config.get('model', {}).get('name')}` on `{config.get('data', {}).get('dataset')}`; "
            f"{pruning.get('strategy', 'layerwise')} pruning, rewind {pruning.get('rewind', '0it')}; "
            f"{plan.get('replicates', 1)} replicate(s), branches "
            f"{', '.join(['ticket', *(b if isinstance(b, str) else json.dumps(b) for b in plan.get('branches', []))])}.")
    report = f"# {store.name}\n\n{what}\n\n{result.text()}\n"
    store.write_verdict(result.table_rows(), result.to_dict(), report)
    return result


def plan_ticket(config: "RunConfig | dict | None" = None, *, model=None, data=None):
    """What `find_ticket` would do, without training or writing anything: the `Plan` (levels, surviving weights
    per layer, steps, rewind step) with `run_dir`, the directory the run lands in."""
    from tflottery.engine.run import prepare

    config = _config(config)
    setup = prepare(config, model, _data(data, config))
    setup.plan.run_dir = setup.store.path
    return setup.plan


def _is_arrays(data) -> bool:
    """Whether `data` is the user's own arrays (or their Data), not a data config."""
    from tflottery.data import Data

    return isinstance(data, (tuple, Data)) or (isinstance(data, dict) and "train" in data)


def _data(data, config: RunConfig):
    """A `Data`: given, or made from the user's own arrays ((x, y) for training, or a dict of train, test and
    validation pairs: `tflottery.data.from_arrays`) at the run's batch size."""
    if data is None:
        return None
    from tflottery.data import Data, from_arrays

    batch = config.training.batch_size
    if isinstance(data, tuple) and len(data) == 2:
        return from_arrays(train=data, batch_size=batch)
    if isinstance(data, dict) and "train" in data:
        unknown = sorted(set(data) - {"train", "test", "validation", "name", "rescale", "class_names"})
        if unknown:
            raise ConfigError(f"data={{...}} takes train, test, validation, name, rescale and class_names; got "
                              f"{', '.join(unknown)}.")
        return from_arrays(**data, batch_size=batch)
    if not isinstance(data, Data):
        raise ConfigError(f"data={type(data).__name__} must be your arrays ((x, y), or {{'train': (x, y), 'test': "
                          "(x, y)}), a tflottery Data (tflottery.data.load or from_arrays), or None; to choose a "
                          "registered dataset, set config['data'].")
    return data


# --------------------------------------------------------------------------- transfer
@dataclass
class TransferResult:
    """Where a transfer's branches are, and their numbers."""

    store: RunStore
    replicate: int
    level: int
    branches: dict  # init ("rewind" | "reinit") -> branch key
    trained: list

    @property
    def path(self) -> Path:
        return self.store.path

    def metrics(self, init: str = "rewind") -> dict:
        return self.store.replicate(self.replicate).metrics(self.level, self.branches[init])

    def record(self, init: str = "rewind") -> LevelRecord:
        return self.store.replicate(self.replicate).load_level(self.level, self.branches[init])

    def summary(self) -> list[dict]:
        keys = set(self.branches.values())
        return [r for r in self.store.replicate(self.replicate).summary() if r["level"] == self.level
                and r["branch"] in keys]


def transfer(source: "str | Path", data: "DataConfig | dict | None" = None,
             training: "TrainingConfig | dict | None" = None, *, level: Optional[int] = None, replicate: int = 0,
             reinit: bool = True, seed: int = 0, head: str = "fresh", runs_dir: "str | Path" = "runs",
             trust_code: bool = False, callbacks: tuple = (), executor: str = "local",
             executor_options: Optional[dict] = None, wait: float = WAIT_S, queue: bool = False,
             model=None) -> TransferResult:
    """Retrain a ticket on `data` with `training`; every field not given is the source's own.

    `source` is a run directory (then `level`, default its last, and `replicate` choose the
    ticket) or a ticket directory. Trains the ticket from its rewind weights and, with
    `reinit`, the same mask from a fresh initialisation (one population); a finished branch is
    not trained again. `head`: the target's output layer, `fresh` (new and unpruned, as Morcos
    et al. 2019), `fresh_pruned`, `reuse` or `reuse_mask` (see `engine.branches.transfer`).
    `transfer_levels` moves many levels and replicates at once. `queue`: record the transfer in the run's work
    queue and train nothing here (`tflottery worker` processes of the run train it). `data` may also be your own
    arrays, as find_ticket's; `model`: the class or function that built a run's network by code (`head="reuse"`
    or `"reuse_mask"`: such a network keeps its output layer inside).
    """
    replicate = as_int(replicate, "replicate", 0)
    (result,) = transfer_levels(source, data, training, levels=None if level is None else [level],
                                replicates=[replicate], reinit=reinit, seed=seed, head=head, runs_dir=runs_dir,
                                trust_code=trust_code, callbacks=callbacks, last_only=level is None, executor=executor,
                                executor_options=executor_options, wait=wait, queue=queue, model=model)
    return result


def transfer_levels(source: "str | Path", data: "DataConfig | dict | None" = None,
                    training: "TrainingConfig | dict | None" = None, *, levels: Optional[list] = None,
                    replicates: Optional[list] = None, reinit: bool = True, seed: int = 0, head: str = "fresh",
                    runs_dir: "str | Path" = "runs", trust_code: bool = False, callbacks: tuple = (),
                    last_only: bool = False, executor: str = "local", executor_options: Optional[dict] = None,
                    wait: float = WAIT_S, queue: bool = False, model=None) -> list:
    """`transfer` of every level in `levels` (default: every finished one) of every replicate in
    `replicates` (default: all), as units of the one level loop: in population groups (`--population` of the
    source run), on `executor`, beside any other process transferring the same levels or working on the run
    (each unit trains once; `wait`: seconds to wait for units others hold; `queue`: only record the transfer for
    the run's workers). One TransferResult per (replicate, level), in that order."""
    from tflottery.engine.executors import options_dict

    options, sharing = options_dict(executor, executor_options), _sharing(wait)
    setup, wanted, target, branches = _transfer_request(source, data, training, levels, replicates, reinit, seed, head,
                                                        runs_dir, trust_code, last_only, model)
    from tflottery.engine.run import transfer as train_transfer

    trained = train_transfer(setup, wanted, list(branches.values()), target, _callbacks(callbacks), executor, options,
                             sharing, as_bool(queue, "queue"))
    write_verdict(setup.store)
    keys = {k: b.key() for k, b in branches.items()}
    return [TransferResult(setup.store, r, level, keys, [t for t in trained if t[0] == r and t[1] == level])
            for r, chosen in wanted.items() for level in chosen]


def _transfer_request(source, data, training, levels, replicates, reinit, seed, head, runs_dir, trust_code,
                      last_only, model=None) -> tuple:
    """Every argument of a transfer checked, before anything is written: (the source run's setup, replicate ->
    levels, the target (data config, training config, Data, TrainingConfig), init -> Transfer branch)."""
    _keras_backend_of(source)
    from tflottery import data as data_lib
    from tflottery.core.files import check_folder
    from tflottery.engine.branches import Transfer
    from tflottery.engine.branches.transfer import HEADS, check_head
    from tflottery.engine.run import open_run
    from tflottery.tickets import ticket_config
    from tflottery.tickets.intake import import_ticket, source_of

    if not isinstance(source, (str, Path)):
        raise ConfigError(f"source={source!r} must be the path of a run directory or a ticket directory.")
    reinit, trust_code = as_bool(reinit, "reinit"), as_literal_true(trust_code, "trust_code")
    seed = as_int(seed, "seed", 0, 2 ** 31 - 1)
    if head not in HEADS:
        raise ConfigError(f"head={head!r}: use {', '.join(HEADS)} (fresh: a new, unpruned output layer).")
    check_folder(runs_dir, "runs_dir")
    store, ticket = source_of(Path(source), Path(runs_dir), trust_code)
    source_config = ticket_config(ticket.meta) if ticket is not None else store.run_config()
    own = data if _is_arrays(data) else None
    data_cfg = build(DataConfig, {} if own is not None else _fields(data, DataConfig, "data",
                                                                     dataclasses.asdict(source_config.data)), "data")
    train_cfg = build(TrainingConfig, _fields(training, TrainingConfig, "training",
                                              dataclasses.asdict(source_config.training)), "training")
    train_cfg.validate()
    if own is not None:  # the user's own arrays: the target's data is named by them, and the run keeps a copy
        from tflottery.engine.run import own_data

        probe = dataclasses.replace(source_config, data=data_cfg, training=train_cfg)
        target_data = own_data(probe, _data(own, probe))
        data_cfg = probe.data
    data_cfg.validate()
    if own is None:  # every check before anything is written
        target_data = data_lib.load(data_cfg, train_cfg.batch_size, store.path.parent if store else runs_dir)
    from tflottery.engine.plan import training_steps

    training_steps(train_cfg, target_data.steps_per_epoch)  # --steps=0it, a warm-up past the end: before the intake
    source_info = ticket.meta["data"] if ticket is not None else store.data_info()
    check_head(head, len(source_info.get("class_names") or []), target_data.num_classes)
    if ticket is not None:
        store = import_ticket(ticket, runs_dir)
    try:
        setup = open_run(store.path, model=model)
    except ConfigError as error:
        if ticket is None:
            raise
        raise TicketError(f"{store.path}: the ticket's recorded configuration cannot be used ({error})") from None
    if ticket is not None and levels is None:
        levels = [ticket.meta["level"]]
    replicates = setup.store.replicates() if replicates is None else [as_int(r, "replicate", 0) for r in replicates]
    wanted = {}
    for r in replicates:
        if r not in setup.store.replicates():
            raise RunError(f"{setup.store.path} has no replicate {r!r}; replicates: {setup.store.replicates()}.")
        done = setup.store.replicate(r).levels()
        chosen = (done[-1:] if last_only else done) if levels is None else levels
        for level in chosen:
            if isinstance(level, bool) or not isinstance(level, int) or level not in done:
                raise TicketError(f"Level {level!r} of {setup.store.replicate(r).path} is not finished; finished "
                                  f"levels: {done}.")
        wanted[r] = list(chosen)
    if tuple(setup.base.input_shape[1:]) != tuple(target_data.input_shape):
        raise TicketError(f"The ticket takes inputs of shape {tuple(setup.base.input_shape[1:])} but {data_cfg.dataset} "
                          f"has {tuple(target_data.input_shape)}: transfer needs the same input shape.")
    plain = (json.loads(json.dumps(dataclasses.asdict(data_cfg))), json.loads(json.dumps(dataclasses.asdict(train_cfg))))
    branches = {init: Transfer(data=plain[0], training=plain[1], init=init, seed=seed, head=head)
                for init in (("rewind", "reinit") if reinit else ("rewind",))}
    setup.store.save_arrays(target_data)
    return setup, wanted, (*plain, target_data, train_cfg), branches


def _fields(given, cls, section: str, source: dict) -> dict:
    """`given` over the source's own fields: a dict's missing keys are inherited; a dataclass is taken whole."""
    if given is None:
        return dict(source)
    if isinstance(given, cls):
        return dataclasses.asdict(given)
    if not isinstance(given, dict):
        raise ConfigError(f"transfer {section}={given!r} must be a {cls.__name__} or a dict of its fields.")
    unknown = set(given) - set(source)
    if unknown:
        raise ConfigError(f"transfer {section}: unknown field(s) {sorted(map(str, unknown))}; known: {sorted(source)}.")
    return {**source, **given}
