"""A run from a configuration or a directory: resolved, checked, loaded (`prepare`, `open_run`), trained (`find`)."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tflottery import data as data_lib
from tflottery import models
from tflottery.config import RunConfig
from tflottery.core.errors import ConfigError, DamagedError, RunError
from tflottery.core.keras_compat import keras
from tflottery.core.names import safe_component
from tflottery.engine import progress as progress_lib
from tflottery.engine import transfers
from tflottery.engine.context import ReplicateContext, RunSetup, target_key
from tflottery.engine.distribute import is_chief, make_strategy, precision_policy, threads_for_towers, worker_index
from tflottery.engine.graph import UnitPlan
from tflottery.engine.leases import Sharing
from tflottery.engine.loop import banner, pending_steps, retrain_damaged, run_plan, train_run
from tflottery.engine.plan import identity, make_plan, run_name
from tflottery.engine.resolve import resolve
from tflottery.pruning.resolve import prunable
from tflottery.engine.store import ReplicateStore, RunStore
from tflottery.engine.trainer.registry import make_trainer, trainer_kind
from tflottery.models.built import KIND as BUILT, Keras3Network, by_code, clone, is_builder, network_of
from tflottery.models.surgery import stochastic_layers
from tflottery.pruning import wrap as wrap_lib


@dataclass
class Run:
    """A run directory after a call: its store, configuration, data and plan, and what this call trained.

    `model` is the last trained level's ticket of replicate 0: wrapped (masks enforced), compiled,
    at its trained weights."""

    config: RunConfig
    store: RunStore
    data: "data_lib.Data"
    plan: object
    model: Optional[keras.Model] = None
    trained: list = field(default_factory=list)  # (replicate, level, branch) trained in this call

    @property
    def path(self) -> Path:
        return self.store.path

    def replicate(self, index: int = 0) -> ReplicateStore:
        return self.store.replicate(index)

    def summary(self) -> list[dict]:
        return self.store.summary()


def prepare(config, model: Optional[keras.Model] = None, data=None) -> RunSetup:
    """Everything about the run of `config` checked and loaded, nothing written: kinds resolved, the model
    checked against the data, the plan made, the run's directory named."""
    config = RunConfig.from_dict(config).validate()
    model = keras3_intake(config, model)
    resolved = resolve(config)
    check_runs_dir(config.runs_dir)
    if is_builder(model):  # the user's code builds the network: on the data's inputs
        data = own_data(config, data if data is not None else data_lib.load(config.data, config.training.batch_size,
                                                                             config.runs_dir))
        model = network_of(model, data.input_shape)
        if isinstance(model, Keras3Network):
            train_on_keras3(config)
    if model is not None:
        models.check_model(model)
        config.model.name = safe_component(model.name, "the model's name")
        config.model.architecture = models.architecture_digest(model)
    else:
        safe_component(config.model.name, "model.name")
    if data is None:
        data = data_lib.load(config.data, config.training.batch_size, config.runs_dir)
    data = own_data(config, data)
    check_precision(config.training.precision)
    with precision_policy(config.training.precision):
        base = model or models.build(config.model.name, data.input_shape, data.num_classes, 0)
    models.check_model(base)
    models.check_fits(base, data)
    inputs = plan_inputs(base, config)
    prunable(inputs["kinds"], base.name)
    plan = make_plan(config, steps_per_epoch=data.steps_per_epoch, **inputs)
    runs_dir = Path(config.runs_dir)
    store = RunStore(runs_dir / run_name(config, identity(config, plan, data.info)))
    setup = RunSetup(config, store, data, base, plan, resolved.branches, model is not None, stochastic_layers(base))
    trainer_kind(config.training).check(setup)
    return setup


def find(config, model: Optional[keras.Model] = None, data=None, callbacks: tuple = (), *, executor: str = "local",
         executor_options: Optional[dict] = None, sharing: Optional[Sharing] = None,
         expected: Optional[Path] = None) -> Run:
    """Train the run of `config` as far as its plan goes, extending its directory where it exists: every unit no
    other process holds, waiting for those others train (`sharing`: the wait, the lease, the tries before a unit is
    marked failed, whether to say which units each claim holds). `executor`: where groups train
    (`tflottery.engine.executors`); `expected`: the run directory this configuration must name (a worker given a
    directory)."""
    from tflottery.engine.executors import check_executor

    config = RunConfig.from_dict(config).validate()
    sharing = (sharing or Sharing()).check()
    check_executor(executor, executor_options)
    threads_for_towers()
    strategy = make_strategy(config.training)  # multi-worker collectives must start before other TF ops
    setup = prepare(config, model, data)
    local_only(setup.base, executor)
    if expected is not None and setup.store.path.resolve() != Path(expected).resolve():
        raise RunError(f"{expected} was made from data or a model this machine sees differently: its configuration "
                       f"names {setup.store.path} here (data source {setup.data.info['source']}). Give every worker "
                       "the same data (the same --data_dir) and tflottery version.")
    if not is_chief(strategy):  # only the chief writes the shared run
        setup.store = RunStore(Path(setup.config.runs_dir) / f".worker_{worker_index()}" / setup.store.name)
    store = setup.store
    store.check_layout()
    store.lock(shared=True)
    try:
        with precision_policy(setup.config.training.precision), strategy.scope():
            return _train(setup, strategy, callbacks, executor, executor_options or {}, sharing)
    finally:
        store.unlock()


def _train(setup: RunSetup, strategy, callbacks: tuple, executor: str, options: dict, sharing: Sharing) -> Run:
    config, plan, store = setup.config, setup.plan, setup.store
    trainer_kind(config.training).check(setup, callbacks, executor)
    check_captures(setup)
    store.write_spec(identity(config, plan, setup.data.info))
    store.save_arrays(setup.data)
    retrain_damaged(store)
    store.describe(config.to_dict(), setup.data.describe(), plan.to_dict(), setup.base.to_json())
    if plan.strategy.structure.kernel_warning:
        logging.getLogger("tflottery").warning(plan.strategy.structure.kernel_warning)
    pending = pending_steps(setup)
    trained = train_plan(setup, run_plan(setup), callbacks, executor, options, sharing,
                         steps=sum(steps for *_, steps in pending), headline=lambda why: banner(setup, pending, why),
                         distributed=strategy.num_replicas_in_sync > 1)
    trained += train_queued(setup, callbacks, executor, options, sharing)
    store.clean()
    store.write_results()
    return Run(config, store, setup.data, plan, ticket_model(setup), trained)


def train_plan(setup: RunSetup, plan: UnitPlan, callbacks: tuple = (), executor: str = "local",
               options: Optional[dict] = None, sharing: Optional[Sharing] = None, *, steps: int,
               headline, distributed: bool = False) -> list:
    """Train the units of `plan` in the one level loop (`imp.train_run`) with the run's trainer kind, on
    `executor`; `steps` of them in all (for the progress line), `headline(population)` the start line (said only
    when something is left to train). The (replicate, level, branch) keys trained here."""
    from tflottery.engine.executors import make_executor

    kind = trainer_kind(setup.config.training)
    kind.check(setup, callbacks, executor)
    size, why = kind.population(setup.config, sum(setup.plan.strategy.sizes.values()), distributed)
    trainer = kind.create(setup, callbacks, size, run_kernels(setup))
    runner = make_executor(executor, trainer, size, setup, options)
    try:
        progress = progress_lib.current(setup.config.training.verbose)
        progress.begin(steps)
        progress.say(headline(why) + ("" if executor == "local" else f" | on {runner.describe()}"))
        return train_run(setup, runner, progress, plan, sharing)
    finally:
        runner.close()


def transfer(setup: RunSetup, levels: dict, branches: list, target, callbacks: tuple = (), executor: str = "local",
             options: Optional[dict] = None, sharing: Optional[Sharing] = None, queue_only: bool = False) -> list:
    """Record the transfer `branches` at `levels` (replicate -> finished levels) of the run `setup` in its work queue,
    then (unless `queue_only`) train them as units of the one level loop on `target` (data config, training config,
    loaded Data, TrainingConfig): any number of processes may transfer the same levels at once, and every
    `tflottery worker` of the run trains them too (each unit trains once), on any executor."""
    local_only(setup.base, executor)
    if queue_only and by_code(setup.base):
        raise ConfigError(f"queue=True: the network is built by your code ({setup.base.name}), which workers do not "
                          "have: train the transfer here (queue=False).")
    setup.store.queue_transfer(transfers.request_of(levels, branches))
    if queue_only:
        return []
    setup.store.lock(shared=True)
    try:
        trained = _transfer_units(setup, levels, branches, target, callbacks, executor, options, sharing)
        setup.store.write_results()
    finally:
        setup.store.unlock()
    return trained


def train_queued(setup: RunSetup, callbacks: tuple = (), executor: str = "local", options: Optional[dict] = None,
                 sharing: Optional[Sharing] = None) -> list:
    """Train the units left of every transfer in the run's work queue (the run held shared by the caller)."""
    trained = []
    for levels, branches in transfers.queued(setup.store):
        trained += _transfer_units(setup, levels, branches, transfers.target_of(setup, branches), callbacks,
                                   executor, options, sharing)
    return trained


def _transfer_units(setup: RunSetup, levels: dict, branches: list, target, callbacks: tuple, executor: str,
                    options: Optional[dict], sharing: Optional[Sharing]) -> list:
    from tflottery.engine.plan import training_steps

    data_cfg, train_dict, target_data, train_cfg = target
    setup.targets[target_key(data_cfg, train_dict)] = (target_data, train_cfg)
    pending = [(r, level, b) for r, chosen in levels.items() for level in chosen for b in branches
               if not setup.store.replicate(r).is_done(level, b.key())]
    if not pending:
        return []
    steps = training_steps(train_cfg, target_data.steps_per_epoch, setup.config.force).steps

    def headline(population: str) -> str:
        return (f"transfer {setup.store.path} levels {sorted({level for _, level, _ in pending})} of replicates "
                f"{sorted({r for r, _, _ in pending})} ({setup.config.data.dataset} -> {data_cfg['dataset']}"
                f"{' labels ' + str(data_cfg['labels']) if data_cfg.get('labels') else ''}): "
                + ", ".join(f"{b.key()} = {'the ticket' if b.params.init == 'rewind' else 'the reinit control'}"
                            for b in branches) + f" | population {population}")

    with precision_policy(train_cfg.precision):
        return train_plan(setup, UnitPlan(levels, list(branches)), callbacks, executor, options, sharing,
                          steps=steps * len(pending), headline=headline)


def own_data(config: RunConfig, data):
    """`data` at the run's batch size; a user's own arrays (`tflottery.data.from_arrays`) also name the run's data
    (config.data: their name, source arrays:<digest>, validation count), so that the run's name and identity are
    theirs."""
    import dataclasses

    if data.batch_size != config.training.batch_size:
        if data.num_train < config.training.batch_size:
            raise ConfigError(f"Only {data.num_train} training examples for batch_size={config.training.batch_size}: "
                              "lower the batch size.")
        data = dataclasses.replace(data, batch_size=config.training.batch_size)
    if data.info.get("source", "").startswith(data_lib.ARRAYS):
        config.data.dataset, config.data.source = data.info["dataset"], data.info["source"]
        config.data.validation = data.info["validation"]
    return data


def keras3_intake(config: RunConfig, model):
    """A Keras 3 model as the run's tf_keras architecture (same layers, names and weights), the run set to train
    on Keras 3 and the model's backend; any other model as it is."""
    from tflottery.models.keras3 import is_keras3, translate

    if model is None or not is_keras3(model):
        return model
    train_on_keras3(config)
    return translate(model, to=2)


def train_on_keras3(config: RunConfig) -> None:
    """The run set to train on Keras 3 and the backend this process loaded it on (the user's model is on it)."""
    import keras

    training = config.training
    if training.backend not in (None, keras.backend.backend()):
        raise ConfigError(f"training.backend={training.backend}: the model is a Keras 3 model on "
                          f"{keras.backend.backend()}, the backend this process loaded: drop --backend or set "
                          "KERAS_BACKEND before importing keras.")
    training.keras, training.backend = 3, keras.backend.backend()


def check_captures(setup: RunSetup) -> None:
    """`plan.capture` keeps dense steps while level 0 trains: asked of a finished level 0 it could keep
    nothing, so it is an error naming the command that replays the dense run, before any work."""
    wanted = {s for s in setup.plan.captures if 0 < s < setup.plan.steps}
    for r in range(setup.config.plan.replicates):
        rep = setup.store.replicate(r)
        if rep.is_done(0):
            missing = sorted(wanted - set(rep.captured_steps()))
            if missing:
                steps = ",".join(f"{s}it" for s in missing)
                raise ConfigError(f"--capture: level 0 of replicate {r} of {setup.store.path} is trained already and "
                                  f"kept steps {rep.captured_steps() or 'none'}, so steps {missing} cannot be kept now. "
                                  f"Replay the dense run once to keep them: `tflottery instability {setup.store.path} "
                                  f"--level=0 --rewind={steps} --replicate={r} --recapture` (the same weights: training "
                                  "is deterministic).")


def list_runs(runs_dir: "str | Path" = "runs") -> list[dict]:
    """One row per run directory of `runs_dir`: what defines it (dataset, model, strategy, structure, rewind)
    and where it stands (levels finished per replicate against the plan, branches, the last ticket's
    accuracy, whether a process is writing it). Read only; a folder that is not a run is skipped."""
    from tflottery.core.files import subfolders
    from tflottery.core.names import TICKET

    folder = Path(runs_dir)
    if not folder.is_dir():
        raise ConfigError(f"--runs_dir={str(runs_dir)!r} is not a folder: name the folder `tflottery find` wrote its "
                          "runs to (default: runs).")
    rows = []
    for name in subfolders(folder, "", folder):
        try:
            store = RunStore.open(folder / name)
            config, plan = store.config(), store.plan()
        except (RunError, OSError, ValueError, KeyError):
            continue
        planned = len(plan.get("levels", []))
        replicates = {r: store.replicate(r).levels() for r in store.replicates()}
        done = [r for r, levels in replicates.items() if len(levels) >= planned]
        last = max((lv for levels in replicates.values() for lv in levels), default=None)
        accuracy = [store.replicate(r).metrics(last).get("early_stop_test_accuracy")
                    for r, levels in replicates.items() if last in levels]
        pruning = config.get("pruning", {})
        holder = store.holder()
        rows.append({
            "run": name, "dataset": config.get("data", {}).get("dataset"), "model": config.get("model", {}).get("name"),
            "seed": config.get("seed"),
            "strategy": pruning.get("strategy"), "structure": pruning.get("structure") or "unstructured",
            "rewind": pruning.get("rewind"), "levels_planned": planned,
            "levels_done": {str(r): len(levels) for r, levels in replicates.items()},
            "replicates": f"{len(done)}/{config.get('plan', {}).get('replicates', 1)} complete",
            "branches": sorted({b for r in replicates for lv in replicates[r]
                                for b in store.replicate(r).branches(lv)} - {TICKET}),
            "last_level": last, "last_remaining": plan["remaining"][last] if last is not None else None,
            "last_accuracy": [a for a in accuracy if a is not None],
            "state": f"running: {holder}" if holder else "complete" if done and len(done) == len(replicates)
            and len(replicates) >= config.get("plan", {}).get("replicates", 1) else "partial: `tflottery find` resumes it"})
    return rows


def ticket_model(setup: RunSetup, replicate: int = 0, level: Optional[int] = None) -> Optional[keras.Model]:
    """The ticket of `level` (default: the last trained) of a replicate: wrapped, masked, compiled, trained."""
    from tflottery.engine.optim import compile_model

    store = setup.store.replicate(replicate)
    levels = store.levels()
    if not levels:
        return None
    record = store.load_level(levels[-1] if level is None else level)
    if isinstance(setup.base, Keras3Network):
        return _keras3_ticket(setup, record)
    model = wrap_lib.wrap(clone(setup.base), setup.plan.pruned_layers)
    models.set_weights(model, record.final)
    wrap_lib.set_masks(model, record.masks)
    return compile_model(model, setup.config.training, setup.plan.training)


def _keras3_ticket(setup: RunSetup, record):
    """A new instance of the user's Keras 3 code at the record's trained weights, each mask a `TicketMask` (kept
    in any later fit), compiled with the run's loss, metric and optimizer at its base learning rate."""
    import keras

    from tflottery.models.keras3 import set_weights
    from tflottery.pruning.keras3 import set_mask

    model = setup.base.fresh()
    set_weights(model, record.final, str(setup.store.path))
    for kernel, mask in record.masks.items():
        set_mask(model, kernel, mask)
    training = setup.config.training
    optimizer = keras.optimizers.Adam(training.lr) if training.optimizer == "adam" else keras.optimizers.SGD(
        training.lr, momentum=training.momentum, nesterov=training.nesterov)
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def open_run(path: "str | Path", verbose: Optional[bool] = None, model=None) -> RunSetup:
    """The setup of an existing run directory, to train more branches of it (transfer, instability); `model`: the
    code that builds its network, for a run whose network is built by code (checked to build the same one)."""
    store = RunStore.open(path)
    threads_for_towers()
    config = store.run_config()
    config.runs_dir = str(store.path.parent)  # where the run is now (its stored arrays beside it)
    if verbose is not None:
        config.training.verbose = verbose
    data = data_lib.load(config.data, config.training.batch_size, config.runs_dir)
    base = stored_model(store) if model is None else _rebuilt(store, config, model, data.input_shape)
    plan = make_plan(config, steps_per_epoch=data.steps_per_epoch, **plan_inputs(base, config))
    return RunSetup(config, store, data, base, plan, resolve(config).branches, False,
                    stochastic_layers(base))


def _rebuilt(store: RunStore, config: RunConfig, builder, input_shape: tuple):
    """The network of a run built by code, from `builder`, checked to be the run's (its architecture's digest)."""
    if not is_builder(builder) or _json_object(store.architecture()).get("class_name") != BUILT:
        raise ConfigError(f"model={builder!r}: pass model= only for a run whose network your code builds (the class "
                          f"or function given to find_ticket); {store.path} stores its architecture.")
    base = network_of(builder, input_shape, config.model.name)
    if models.architecture_digest(base) != config.model.architecture:
        raise ConfigError(f"model={getattr(builder, '__qualname__', builder)} builds another network than "
                          f"{store.path}'s (architecture {models.architecture_digest(base)}, the run's "
                          f"{config.model.architecture}): pass the code that built the run.")
    return base


def plan_inputs(base, config: RunConfig) -> dict:
    """What the plan needs of the run's network (`wrap.plan_inputs`), its channel graph where the structure follows
    channels."""
    from tflottery.pruning.structures import structure_kind

    channels = structure_kind(config.pruning.structure) == "channels"
    if channels and by_code(base):
        raise ConfigError("pruning.structure channels follows a Functional or Sequential model's graph, which a network "
                          "built by code has not: prune it weight by weight, in blocks or N:M, or build it Functional.")
    return wrap_lib.plan_inputs(base, config.pruning.prune, channels)


def local_only(base, executor: str) -> None:
    """A network built by code trains only in this process: any other executor is refused in one line."""
    if by_code(base) and executor != "local":
        raise ConfigError(f"executor={executor!r}: the network is built by your code ({base.name}), which "
                          "other processes do not have: train it with the local executor (population groups still "
                          "train several units at once).")


def _json_object(text: str) -> dict:
    """`text` as a JSON object, or {} (a damaged file is reported where it is rebuilt)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def stored_model(store: RunStore) -> keras.Model:
    """The run's architecture (model.json) as a tf_keras model; one line naming the file if it is not one, or if
    the user's code builds the network (only that code can)."""
    text = store.architecture()
    description = _json_object(text)
    if description.get("class_name") == BUILT:
        builder = description.get("config", {}).get("builder")
        raise RunError(f"{store.path}'s network is built by code ({builder}): only a process that has it can train "
                       "or read the run; call find_ticket(config, model=<that class or function>) there.")
    try:
        return keras.models.model_from_json(store.architecture())
    except Exception as error:  # noqa: BLE001 — Keras raises many kinds for a malformed config
        raise DamagedError(f"{store.path / 'model.json'} is not the run's architecture ({type(error).__name__}: "
                           f"{str(error).strip().splitlines()[0][:160] if str(error).strip() else ''}): the file was "
                           "altered; restore it from a copy of the run.") from None


def replicate_context(setup: RunSetup, replicate: int, callbacks: tuple = (), progress=None,
                      trainer=None) -> ReplicateContext:
    """A replicate of an existing run with a trainer of its own (or `trainer`, shared by replicates)."""
    if isinstance(replicate, bool) or not isinstance(replicate, int) or replicate not in setup.store.replicates():
        raise RunError(f"{setup.store.path} has no replicate {replicate!r}; replicates: {setup.store.replicates()}.")
    trainer = trainer or make_trainer(setup, callbacks, capacity=64, jit=run_kernels(setup))
    return ReplicateContext(setup, replicate, trainer, progress or progress_lib.current(setup.config.training.verbose))


def run_kernels(setup: RunSetup) -> bool:
    """Whether the run trains under XLA: what it recorded, else --jit_compile (auto: XLA on a GPU only)."""
    from tflottery.engine.optim import use_xla

    asked = setup.config.training.jit_compile
    return setup.store.kernels(asked, use_xla(asked))


def check_runs_dir(runs_dir: str) -> None:
    from tflottery.core.files import check_folder

    check_folder(runs_dir, "runs_dir")


def check_precision(precision) -> None:
    import tensorflow as tf

    if precision == "mixed_float16" and not tf.config.list_physical_devices("GPU"):
        raise ConfigError("training.precision=mixed_float16 computes in float16, which a CPU only emulates (slowly, "
                          "and with float16's range): on a CPU use --precision=mixed_bfloat16, or train on a GPU.")


def describe_plan(plan) -> str:
    """The dry run's text: levels, steps, rewind, and the table of surviving weights."""
    return (f"{len(plan.levels) - 1} pruned level(s), {plan.steps} steps per level, rewind to step "
            f"{plan.rewind_step} (pruned levels train steps {plan.rewind_step}-{plan.steps})\n{plan.table()}")

