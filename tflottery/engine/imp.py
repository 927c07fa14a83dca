"""Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020).

Level 0 trains the dense network for T steps, keeping its weights at the rewind step k. Level
L >= 1 prunes the ticket of level L-1 by the magnitude of its *trained* weights to the plan's
counts (see `tflottery.pruning.strategies`), rewinds the survivors to step k, and trains them
from step k to T with fresh optimizer moments and the learning-rate schedule at step k
(open_lth's protocol). Every branch of a level (`tflottery.engine.branches`) trains through
the same code, in the same run directory, resuming where a previous call stopped.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


from tflottery import data as data_lib
from tflottery import models
from tflottery.config import RunConfig, Step, TrainingConfig, hashed_fields
from tflottery.engine import branches as branch_lib
from tflottery.engine import stack
from tflottery.engine.distribute import is_chief, make_strategy, precision_policy, worker_index
from tflottery.engine.optim import compile_model, reset_optimizer
from tflottery.engine import progress as progress_lib
from tflottery.engine.progress import Progress, progress_line
from tflottery.engine.seeds import derive_seed
from tflottery.engine.store import TICKET, LevelRecord, ReplicateStore, RunStore
from tflottery.engine.train import train_level
from tflottery.errors import ConfigError, ModelError, RunError
from tflottery.files import read_json, write_csv, write_json
from tflottery.keras_compat import keras, require_tf_keras
from tflottery.pruning import masks as mask_lib
from tflottery.pruning import strategies as strategy_lib
from tflottery.pruning import wrap as wrap_lib

ENGINE = 2  # bump when a change alters what a run trains: old runs then keep their own names
AUTO_GRID = ("0it", "100it", "500it", "1ep", "2ep")  # rewind=auto's default probe, earliest first
STABLE_PP = 2.0  # stable: test error along the path rises less than this over the ends' mean (Frankle et al. 2020)
PROBE_ALPHAS = 11


@dataclass
class PruningPlan:
    """What IMP will do, known before any training: surviving weights per layer and level."""

    strategy: strategy_lib.PruningStrategy
    rows: list  # plan rows for levels 0..levels
    levels: list  # the levels that train (all of them; 0 and the last for one-shot)
    steps: int  # T: the training length of a level
    rewind_step: Optional[int]  # k; None for rewind=auto (each replicate's probe chooses from `grid`)
    steps_per_epoch: int
    grid: tuple = ()  # rewind=auto: the steps its probe tries, in order

    @property
    def remaining(self) -> list[float]:
        full = sum(self.strategy.sizes.values())
        return [strategy_lib.total(row) / full for row in self.rows]

    def table(self) -> str:
        return strategy_lib.describe(self.strategy, self.rows, self.strategy.from_dense, self.levels)

    def to_dict(self) -> dict:
        return {"strategy": self.strategy.identity(), "levels": self.levels, "steps": self.steps,
                "rewind_step": self.rewind_step, "rewind_grid": list(self.grid),
                "steps_per_epoch": self.steps_per_epoch, "rows": self.rows, "remaining": self.remaining}


@dataclass
class Run:
    """A run directory after a call: its store, configuration, data and plan, and what this call trained."""

    config: RunConfig
    store: RunStore
    data: "data_lib.Data"
    plan: PruningPlan
    model: keras.Model  # the wrapped, compiled model (holding the last branch this call trained)
    trained: list = field(default_factory=list)  # (replicate, level, branch) trained in this call

    @property
    def path(self) -> Path:
        return self.store.path

    def replicate(self, index: int = 0) -> ReplicateStore:
        return self.store.replicate(index)

    def summary(self) -> list[dict]:
        return self.store.summary()


# --------------------------------------------------------------------------- planning
def plan_run(config: RunConfig, model: keras.Model, steps_per_epoch: int) -> PruningPlan:
    """Validate everything that depends on the model and data, and plan the levels."""
    kinds = wrap_lib.prunable_kinds(model)
    if not kinds:
        raise ModelError(f"Model {model.name!r} has no Dense or Conv layer to prune.")
    weights = wrap_lib.get_weights(model)
    strategy = strategy_lib.build_strategy(config.pruning, kinds, strategy_lib.layer_sizes(weights, kinds),
                                           strategy_lib.layer_shapes(weights, kinds))
    levels = config.plan.fixed_levels
    if levels is None:
        levels = strategy.levels_for(config.plan.target_remaining)
    steps = Step.parse(config.training.steps).to_steps(steps_per_epoch)
    if steps < 1:
        raise ConfigError(f"training.steps={config.training.steps} is zero steps: train for at least 1it.")
    auto = config.pruning.rewind == "auto"
    points = (config.pruning.rewind_grid or list(AUTO_GRID)) if auto else [config.pruning.rewind]
    resolved = sorted({Step.parse(p).to_steps(steps_per_epoch) for p in points})
    for point, step in zip(points, [Step.parse(p).to_steps(steps_per_epoch) for p in points]):
        if step >= steps and not (auto and not config.pruning.rewind_grid):
            name = "pruning.rewind_grid" if auto else "pruning.rewind"
            raise ConfigError(f"{name}: {point} (step {step}) is not before the end of training "
                              f"(training.steps={config.training.steps}, {steps} steps): pruned levels train from "
                              "the rewind step to the end, so rewind to an earlier step.")
    grid = tuple(s for s in resolved if s < steps) if auto else ()
    if strategy.name == "early_bird" and config.plan.target_remaining is None:
        raise ConfigError("pruning.strategy=early_bird draws one ticket at a target: give --target_remaining "
                          "(e.g. 0.07), the fraction of weights it keeps.")
    trained = [0, levels] if strategy.from_dense and levels else list(range(levels + 1))
    return PruningPlan(strategy, strategy.plan(levels), trained, steps, None if auto else resolved[0],
                       steps_per_epoch, grid)


def identity(config: RunConfig, plan: PruningPlan, data: "data_lib.Data") -> dict:
    """What defines the trajectory of a run's tickets, resolved (2ep and 1832it hash alike)."""
    source = data.info["source"]
    kind = "sample" if source.startswith("sample") else "synthetic" if source.startswith("synthetic") else "full"
    d = config.data
    return {
        "engine": ENGINE,
        "data": {"dataset": d.dataset, "labels": sorted(d.labels) if d.labels else None,
                 "remap_labels": d.remap_labels if d.labels else None, "fraction": d.fraction,
                 "fraction_part": d.fraction_part if d.fraction < 1 else None,
                 "validation": data.info["validation"], "source": kind},
        "model": hashed_fields(config.model),
        "pruning": {**plan.strategy.identity(), "one_shot": plan.strategy.from_dense,
                    **({"rewind_step": plan.rewind_step} if plan.rewind_step is not None else
                       {"rewind": "auto", "grid": list(plan.grid), "threshold": STABLE_PP, "probe_alphas": PROBE_ALPHAS}),
                    "lr_rewind": config.pruning.lr_rewind,
                    # early_bird stops the dense level at a draw that depends on the target: part of the trajectory
                    **({"target_level": plan.levels[-1]} if plan.strategy.name == "early_bird" else {})},
        "training": config.training.identity(data.steps_per_epoch),
        "seed": config.seed,
    }


def run_name(config: RunConfig, ident: dict) -> str:
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    labels = "" if not config.data.labels else "-l" + "".join(map(str, sorted(config.data.labels)))
    return f"{config.model.name}-{config.data.dataset}{labels}-{digest}"


def architecture_digest(model: keras.Model) -> str:
    return hashlib.sha256(model.to_json().encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- one replicate
class Replicate:
    """The context branches draw on for one replicate of a run: records, weights, models, data."""

    def __init__(self, config: RunConfig, store: ReplicateStore, data, base: keras.Model, plan: PruningPlan,
                 init: Optional[dict], callbacks: tuple = (), progress: Optional[Progress] = None):
        self.config, self.replicate, self.data, self.base, self.plan_info = config, store, data, base, plan
        self.replicate_index = store.index
        self.strategy, self.plan = plan.strategy, plan.rows
        self.end_step = plan.steps
        self._init, self.callbacks = init, callbacks
        self.progress = progress or Progress(config.training.verbose)
        self._models: dict = {}
        self._targets: dict = {}
        self.trained: list = []

    # ------------------------------------------------------------------ what branches read
    @property
    def init(self) -> dict:
        if self.replicate.is_done(0):  # the recorded initialisation is the truth on resume
            return self.replicate.load_level(0).start
        return self._init

    def all_ones(self) -> dict:
        return mask_lib.ones_like(self.init, self.strategy.sizes)

    @property
    def rewind_step(self) -> int:
        """The run's rewind step; with rewind=auto, the step this replicate's probe chose."""
        if self.plan_info.rewind_step is not None:
            return self.plan_info.rewind_step
        chosen = self.replicate.path / "rewind.json"
        if not chosen.exists():
            raise RunError(f"{self.replicate.path}: rewind=auto has not chosen a step yet (the probe runs after "
                           "level 0): run `tflottery find` on this run to finish it.")
        return int(read_json(chosen)["step"])

    def rewind_known(self) -> bool:
        return self.plan_info.rewind_step is not None or (self.replicate.path / "rewind.json").exists()

    def dense_captures(self) -> set:
        """Steps of the dense run to keep: the rewind step (or auto's grid) and the plan's captures."""
        spe = self.data.steps_per_epoch
        steps = {Step.parse(c).to_steps(spe) for c in self.config.plan.capture}
        steps |= set(self.plan_info.grid) if self.plan_info.rewind_step is None else {self.plan_info.rewind_step}
        return {s for s in steps if 0 < s < self.end_step}

    def dense_weights(self, step: int) -> dict:
        """The dense run's weights at `step` (0: the initialisation)."""
        if step == 0:
            return self.init
        if step not in self.replicate.captured_steps():
            raise ConfigError(
                f"Step {step} of {self.replicate.path}'s dense training was not kept (kept: "
                f"{[0, *self.replicate.captured_steps()]}). Keep it with `tflottery find ... --capture='[\"{step}it\"]'` "
                f"before level 0 trains, or replay the dense run once to keep it: `tflottery instability ... "
                f"--recapture` (the same weights: training is deterministic).")
        return self.replicate.load_capture(step)

    def rewind_weights(self) -> dict:
        return self.dense_weights(self.rewind_step)

    def dense_watch(self):
        """early_bird: (every, check) that stops the dense level once the early-bird ticket is drawn."""
        if self.strategy.name != "early_bird":
            return None
        from tflottery.pruning.early_bird import EarlyBirdTracker

        every = Step.parse(self.strategy.value("early_bird_every")).to_steps(self.data.steps_per_epoch)
        tracker = EarlyBirdTracker(self.strategy, self.plan[self.plan_info.levels[-1]],
                                   self.strategy.value("early_bird_window"), self.strategy.value("early_bird_threshold"))
        return every, tracker

    def record(self, level: int, branch: str = TICKET) -> LevelRecord:
        return self.replicate.load_level(level, branch)

    def fresh_weights(self, seed: int, classes: Optional[int] = None) -> dict:
        return models.fresh_weights(self.base if classes is None else with_head(self.base, classes, seed), seed)

    def fresh_head(self, seed: int, classes: int) -> dict:
        head = self.output_kernel().split("/")[0]
        return {k: v for k, v in wrap_lib.get_weights(with_head(self.base, classes, seed)).items()
                if k.startswith(f"{head}/")}

    def output_kernel(self) -> str:
        return list(self.strategy.kinds)[-1]

    def add_target(self, data: dict, training: dict, loaded, training_config: TrainingConfig) -> None:
        """Give `target` data that the caller has loaded and checked already."""
        self._targets[json.dumps([data, training], sort_keys=True)] = (loaded, training_config)

    def target(self, data: dict, training: dict):
        """(Data, TrainingConfig) of a branch's own task, loaded once."""
        key = json.dumps([data, training], sort_keys=True)
        if key not in self._targets:
            from tflottery.config import DataConfig, build

            train_cfg = build(TrainingConfig, training, "training")
            train_cfg.validate()
            self._targets[key] = (data_lib.load(build(DataConfig, data, "data"), train_cfg.batch_size), train_cfg)
        return self._targets[key]

    @staticmethod
    def steps_of(training: TrainingConfig, data) -> int:
        steps = Step.parse(training.steps).to_steps(data.steps_per_epoch)
        if steps < 1:
            raise ConfigError(f"training.steps={training.steps} is zero steps: train for at least 1it.")
        return steps

    # ------------------------------------------------------------------ training
    def model_for(self, classes: Optional[int], training: TrainingConfig, data) -> keras.Model:
        key = (classes, json.dumps(hashed_fields(training), sort_keys=True), data.steps_per_epoch)
        if key not in self._models:
            base = self.base if classes is None else with_head(self.base, classes, 0)
            self._models[key] = compile_model(wrap_lib.wrap(base, [k.split("/")[0] for k in self.strategy.kinds]),
                                              training, data.steps_per_epoch)
        return self._models[key]

    def pending(self, levels: list, branches: list) -> list:
        """(level, branch) jobs not yet finished, in training order."""
        return [(level, b) for level in levels for b in branches if b.applies(level)
                and not self.replicate.is_done(level, b.key())]

    def train(self, level: int, branch: branch_lib.Branch) -> bool:
        """Train one branch of one level unless it is finished; True if it trained."""
        if self.replicate.is_done(level, branch.key()):
            return False
        start = branch.start(self, level)
        if hasattr(branch, "fit"):  # a branch with its own model (a supermask): it trains, the loop stores
            started, final, masks, result = branch.fit(self, level, start)
            self._save(level, branch, dataclasses.replace(start, masks=masks), self.data, self.config.training,
                       started, final, result, None)
            return True
        data, training = start.data or self.data, start.training or self.config.training
        model = self.model_for(start.head_classes, training, data)
        wrap_lib.set_weights(model, start.weights() if callable(start.weights) else start.weights)
        wrap_lib.set_masks(model, start.masks)
        reset_optimizer(model, start.start_step)
        started = wrap_lib.get_weights(model)
        keras.utils.set_random_seed(branch.seed(self, level, "keras"))  # dropout and the like: never process history
        level_dir = self.replicate.level_dir(level, branch.key())
        watch = None
        if start.watch is not None:
            every, tracker = start.watch
            watch = (every, lambda step: tracker.check(step, wrap_lib.get_weights(model)))
        result = train_level(model, data, training, start=start.start_step, end=start.end_step,
                             seed=branch.seed(self, level, "data_order"), captures=start.captures,
                             get_weights=wrap_lib.get_weights, callbacks=self.callbacks,
                             log_dir=str(level_dir / "tensorboard") if training.tensorboard else None,
                             label=f"r{self.replicate_index} level {level} {branch.key()}: ", watch=watch)
        for step, weights in result.captured.items():
            self.replicate.save_capture(step, weights)
        extra = {}
        if start.watch is not None:
            tracker = start.watch[1]
            extra["early_bird"] = {"drawn": tracker.drawn is not None, "history": tracker.history,
                                   "drawn_step": tracker.drawn["step"] if tracker.drawn else None,
                                   "dense_steps": result.history[-1]["step"],
                                   "dense_steps_saved": start.end_step - result.history[-1]["step"]}
        self._save(level, branch, start, data, training, started, wrap_lib.get_weights(model), result,
                   model if start.head_classes or start.data is not None else None, extra)
        return True

    def train_together(self, level: int, branches: list) -> list:
        """Train the unfinished `branches` of one level side by side as one compiled program (see
        `tflottery.engine.stack`). They must share data, training and steps (copies do). Returns the
        keys trained."""
        pending = [b for b in branches if not self.replicate.is_done(level, b.key())]
        if len(pending) < 2:
            return [b.key() for b in pending if self.train(level, b)]
        starts = [b.start(self, level) for b in pending]
        first = starts[0]
        if any((s.start_step, s.end_step, s.head_classes, s.data, s.training) !=
               (first.start_step, first.end_step, None, None, None) for s in starts):
            raise ValueError("train_together needs branches of the run's own data, training and steps")
        training = self.config.training
        model = self.stacked_for(len(pending))
        for c, s in enumerate(starts):
            stack.set_tower(model, c, s.weights() if callable(s.weights) else s.weights, s.masks)
        reset_optimizer(model, first.start_step)
        started = [stack.get_tower(model, c) for c in range(len(pending))]
        keras.utils.set_random_seed(pending[0].seed(self, level, "keras"))
        data = stack.StackedData(self.data, [b.seed(self, level, "data_order") for b in pending])
        result = train_level(model, data, training, start=first.start_step, end=first.end_step, seed=0,
                             callbacks=self.callbacks, label=f"r{self.replicate_index} level {level} "
                             f"{len(pending)} copies: ")
        for c, (branch, s, own) in enumerate(zip(pending, starts, stack.split_result(result, len(pending)))):
            self._save(level, branch, s, self.data, training, started[c], stack.get_tower(model, c), own, None)
        return [b.key() for b in pending]

    def stacked_for(self, towers: int) -> keras.Model:
        key = ("stacked", towers)
        if key not in self._models:
            model = stack.stacked_model(self.base, [k.split("/")[0] for k in self.strategy.kinds], towers)
            self._models[key] = compile_model(model, self.config.training, self.data.steps_per_epoch)
        return self._models[key]

    def _save(self, level, branch, start, data, training, started, final, result, own_model, extra=None) -> None:
        r, key = self.replicate_index, branch.key()
        remaining = mask_lib.remaining(start.masks)
        metrics = {"level": level, "branch": key, "kind": branch.kind, "replicate": r,
                   "remaining": remaining["total"], "layers_remaining": {k: v for k, v in remaining.items() if k != "total"},
                   "start_step": start.start_step, "end_step": start.end_step,
                   "rewind_step": self.rewind_step if self.rewind_known() else None,
                   "data_source": data.info["source"], "history": result.history, **result.summary(), **(extra or {})}
        if branch.kind == TICKET:  # the mask with no training: on the initial weights, and their signed constants
            from tflottery.engine.supermask import untrained_accuracies

            metrics.update(untrained_accuracies(self.model_for(None, self.config.training, self.data), self.data,
                                                self.init, start.masks))
        level_dir = self.replicate.level_dir(level, key)
        if own_model is not None:
            write_json(level_dir / "model.json", json.loads(model_json(own_model)))
            write_json(level_dir / "data.json", data.describe())
        meta = {"kind": branch.kind, "params": branch.params()} if branch.params() else None
        self.replicate.save_level(level, key, LevelRecord(start.masks, started, final, metrics), meta)
        self.trained.append((r, level, key))
        eta = self.progress.finished(start.end_step - start.start_step, result.wall_time_s)
        if training.verbose:
            print(progress_line(metrics, self.plan_info.levels[-1], eta, r), flush=True)


def with_head(model: keras.Model, classes: int, seed: int) -> keras.Model:
    """`model` with its Dense output layer replaced by one of `classes` units (Gaussian Glorot, seeded)."""
    out_layer = model.layers[-1]
    if not isinstance(out_layer, keras.layers.Dense) or len(model.outputs) != 1:
        raise ModelError(f"Cannot swap the head of {model.name!r}: its last layer {out_layer.name!r} is not a "
                         "Dense output layer.")
    config = dict(out_layer.get_config(), units=classes,
                  kernel_initializer={"class_name": "GlorotNormal", "config": {"seed": seed}})
    head = keras.layers.Dense.from_config(config)
    return keras.Model(model.inputs, head(out_layer.input), name=model.name)


def model_json(model: keras.Model) -> str:
    """The plain architecture of a (possibly wrapped) model."""
    if isinstance(model, wrap_lib.MaskedModel):
        model = wrap_lib.strip(model)
    return model.to_json()


# --------------------------------------------------------------------------- the command
def find_ticket(config: "RunConfig | dict | None" = None, *, model: Optional[keras.Model] = None,
                data: "Optional[data_lib.Data]" = None, dry_run: bool = False,
                callbacks: tuple = ()) -> "Run | PruningPlan":
    """Run IMP as configured, extending the run directory of this configuration where it exists.

    More levels train only the new levels, another branch only that branch, more replicates
    only the new replicates; a killed run resumes at the first unfinished branch.
    `model` may be any Sequential/Functional tf_keras model (default: the zoo's
    `config.model.name`); each replicate re-seeds its initialisers. With `dry_run`, return the
    `PruningPlan` without training or writing anything.
    """
    config = RunConfig.from_dict(config).validate()
    check_runs_dir(config.runs_dir)
    strategy = make_strategy(config.training)  # multi-worker collectives must start before other TF ops
    if model is not None:
        require_tf_keras(model)
        wrap_lib.check_layer_names(model)
        config.model.name = model.name
        config.model.architecture = architecture_digest(model)
    if data is None:
        data = data_lib.load(config.data, config.training.batch_size)
    with precision_policy(config.training.precision), strategy.scope():
        base = model or models.build(config.model.name, data.input_shape, data.num_classes, 0)
        check_fits(base, data)
        plan = plan_run(config, base, data.steps_per_epoch)
        if dry_run:
            return plan
        runs_dir = Path(config.runs_dir)
        if not is_chief(strategy):  # only the chief writes the shared run
            runs_dir = runs_dir / f".worker_{worker_index()}"
        store = RunStore(runs_dir / run_name(config, identity(config, plan, data)))
        store.check_layout()
        store.lock()
        try:
            return _run(config, store, data, base, plan, model is not None, callbacks)
        finally:
            store.unlock()


def open_replicate(path: "str | Path", replicate: int = 0, callbacks: tuple = (), verbose: Optional[bool] = None) -> Replicate:
    """The context of one replicate of an existing run, to train more branches of it (transfer, instability)."""
    store = RunStore.open(path)
    config = RunConfig.from_dict(store.config())
    if verbose is not None:
        config.training.verbose = verbose
    if isinstance(replicate, bool) or not isinstance(replicate, int) or replicate not in store.replicates():
        raise RunError(f"{store.path} has no replicate {replicate!r}; replicates: {store.replicates()}.")
    base = keras.models.model_from_json((store.path / "model.json").read_text())
    data = data_lib.load(config.data, config.training.batch_size)
    plan = plan_run(config, base, data.steps_per_epoch)
    return Replicate(config, store.replicate(replicate), data, base, plan, None, callbacks,
                     progress_lib.current(config.training.verbose))


def check_runs_dir(runs_dir: str) -> None:
    path = Path(runs_dir)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"runs_dir={runs_dir!r} is a file: name a folder for run directories (default 'runs').")


def check_fits(model: keras.Model, data) -> None:
    outputs = model.output_shape[-1] if len(model.outputs) == 1 else None
    if outputs != data.num_classes:
        raise ModelError(f"Model {model.name!r} has {outputs} outputs but {data.info['dataset']} "
                         f"{'with labels ' + str(data.info['labels']) if data.info.get('labels') else ''} has "
                         f"{data.num_classes} classes: give the output layer {data.num_classes} units.")
    if tuple(model.input_shape[1:]) != tuple(data.input_shape):
        raise ModelError(f"Model {model.name!r} takes inputs of shape {tuple(model.input_shape[1:])}, but "
                         f"{data.info['dataset']} has {tuple(data.input_shape)}.")


def _run(config, store, data, base, plan, user_model: bool, callbacks) -> Run:
    store.write_spec(identity(config, plan, data))
    write_json(store.path / "config.json", config.to_dict())
    write_json(store.path / "data.json", data.describe())
    write_json(store.path / "plan.json", plan.to_dict())
    if not (store.path / "model.json").exists():
        write_json(store.path / "model.json", json.loads(base.to_json()))
    progress = progress_lib.current(config.training.verbose)
    jobs = [branch_lib.BRANCHES[TICKET]()] + [branch_lib.BRANCHES[b]() for b in config.plan.branches]
    replicates = []
    for r in range(config.plan.replicates):
        init = None
        if not store.replicate(r).is_done(0):
            seed = derive_seed(config.seed, r, None, None, "init")
            init = models.fresh_weights(base, seed) if user_model else \
                wrap_lib.get_weights(models.build(config.model.name, data.input_shape, data.num_classes, seed))
        replicates.append(Replicate(config, store.replicate(r), data, base, plan, init, callbacks, progress))
    pending = [(rep.replicate_index, level, b.key()) for rep in replicates for level, b in rep.pending(plan.levels, jobs)]
    progress.begin(sum(plan.steps - (0 if level == 0 else plan.rewind_step or 0) for _, level, _ in pending))
    progress.say(banner(config, store, plan, data, pending))
    if getattr(plan.strategy, "kernel_warning", None):
        logging.getLogger("tflottery").warning(plan.strategy.kernel_warning)
    for rep in replicates:
        for level in plan.levels:
            for branch in jobs:
                if branch.applies(level):
                    rep.train(level, branch)
            if level == 0 and plan.rewind_step is None:
                probe_rewind(rep)
    write_csv(store.path / "results.csv", store.summary())
    model = replicates[0].model_for(None, config.training, data)
    return Run(config, store, data, plan, model, [t for rep in replicates for t in rep.trained])


def probe_rewind(rep: Replicate) -> int:
    """rewind=auto: the earliest step of the grid at which the dense network is stable to SGD noise.

    At each grid step (earliest first) two copies train from the dense run's weights there with
    different batch orders; the first step whose test-error barrier is below STABLE_PP points
    is chosen (Frankle et al. 2020). The probe's numbers go to replicate_<r>/rewind.json and
    into every ticket exported from this replicate.
    """
    from tflottery.engine.interpolate import measure_point

    chosen_file = rep.replicate.path / "rewind.json"
    if chosen_file.exists():
        return int(read_json(chosen_file)["step"])
    probe, chosen = [], None
    for step in rep.plan_info.grid:
        point = measure_point(rep, 0, step, copies=2, alphas=PROBE_ALPHAS, train_examples=2000)
        probe.append({"step": step, "instability": point["instability"],
                      "end_test_accuracy": point["end_test_accuracy"]})
        rep.progress.say(f"r{rep.replicate_index} rewind=auto: the dense network rewound to step {step} has a "
                         f"test-error barrier of {point['instability']:.2f} points"
                         f"{' (stable)' if point['instability'] < STABLE_PP else ''}")
        if point["instability"] < STABLE_PP:
            chosen = step
            break
    stable = chosen is not None
    chosen = chosen if stable else rep.plan_info.grid[-1]
    write_json(chosen_file, {"step": chosen, "stable": stable, "threshold_pp": STABLE_PP, "probe": probe,
                             "alphas": PROBE_ALPHAS, "copies": 2})
    rep.progress.say(f"r{rep.replicate_index} rewind=auto: rewinding to step {chosen}" +
                     ("" if stable else f" (no grid step was stable below {STABLE_PP} points: the latest one)"))
    return chosen


def banner(config: RunConfig, store: RunStore, plan: PruningPlan, data, pending: list) -> str:
    """The start line: what runs, on what, where it lands, and whether it resumes."""
    t = config.training
    remaining = plan.remaining
    branches = ", ".join(config.plan.branches) or "none"
    if not pending:
        state = "finished already: nothing to train"
    elif any(store.replicate(r).levels() for r in range(config.plan.replicates)):
        r, level, branch = pending[0]
        state = f"resuming at replicate {r}, level {level} ({branch}): {len(pending)} branch-levels to train"
    else:
        state = f"{len(pending)} branch-levels to train"
    return (f"run {store.path} | {data.info['dataset']} ({data.info['source']}, {data.num_train} train) | "
            f"{config.model.name} | {config.pruning.strategy} pruning, levels {plan.levels[0]}-{plan.levels[-1]} "
            f"({100 * remaining[plan.levels[-1]]:.1f}% remaining at the last), rewind {config.pruning.rewind} | "
            f"{t.optimizer} lr {t.lr:g}, batch {t.batch_size}, {t.steps} ({plan.steps} steps) per level | "
            f"baselines: {branches} | replicates: {config.plan.replicates} | {state}")
