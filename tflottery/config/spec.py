"""What defines a run, as plain dataclasses; validated before any work starts. No TensorFlow, no registry.

A run's identity is what fixes the trajectory of its tickets: data, model, pruning rule, the
training that changes the math, and the seed. `tflottery.engine.plan` resolves it (steps in
iterations, each layer's rate) and hashes it into the run's name. Everything else is how far
the run goes (`PlanConfig`) or how fast and how loudly it trains (`unhashed` fields): changing
those extends or re-reads a run, never forks it.

Kinds (pruning strategies, structures, branches) are named here as plain data; the engine's
resolver (`tflottery.engine.resolve`) turns the names into registered kinds and checks each
kind's own settings.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from tflottery.config.fields import build, check_types, in_range, setting, unhashed
from tflottery.config.plan import PlanConfig
from tflottery.core.errors import ConfigError
from tflottery.core.steps import Step
from tflottery.core.values import as_bool

OPTIMIZERS = ("adam", "sgd")
PRECISIONS = (None, "float32", "mixed_float16", "mixed_bfloat16")
DISTRIBUTE = ("none", "mirrored", "multi_worker")
KERAS3_BACKENDS = ("tensorflow", "jax", "torch")


@dataclass(slots=True)
class DataConfig:
    """Which examples a run sees. See `tflottery.data.load`."""

    dataset: str = setting("mnist", "mnist, fashion_mnist, kmnist, cifar10, cifar100, svhn_cropped (`tflottery data`)")
    labels: Optional[list[int]] = setting(None, "keep only these classes, e.g. [5, 6, 7, 8, 9]")
    remap_labels: bool = setting(True, "map the kept labels to 0..k-1")
    fraction: float = setting(1.0, "keep this fraction of the training set ...")
    fraction_part: int = setting(0, "... namely the part-th disjoint slice (S1=0, S2=1 for halves)")
    validation: Optional[int] = setting(None, "examples held out for early stopping; default 5,000, or 10% of a small set")
    source: str = setting("auto", "auto (the first registered source that has it) or a source by name (`tflottery data`)")
    data_dir: Optional[str] = unhashed(None, "TFDS data directory")
    manual_dir: Optional[str] = unhashed(None, "IDX files or TFDS manual downloads")

    def validate(self) -> None:
        check_types(self, "data")
        if self.labels is not None:
            if len(self.labels) < 2:
                raise ConfigError(f"data.labels={self.labels} keeps fewer than 2 classes: a classifier needs at "
                                  "least two, e.g. --labels='[5,6,7,8,9]'.")
            if len(set(self.labels)) != len(self.labels):
                raise ConfigError(f"data.labels={self.labels} repeats a class: list each class once.")
            if min(self.labels) < 0:
                raise ConfigError(f"data.labels={self.labels}: classes are numbered from 0.")
        in_range("data.fraction", self.fraction, 0.0, 1.0, low_open=True,
                 hint="e.g. 0.5 for the halves S1/S2 of Morcos et al.")
        parts = max(1, int(1.0 / self.fraction + 1e-9))
        if not 0 <= self.fraction_part < parts:
            raise ConfigError(f"data.fraction_part={self.fraction_part} does not exist for fraction={self.fraction}: "
                              f"use 0..{parts - 1}.")
        if self.validation is not None and self.validation < 0:
            raise ConfigError(f"data.validation={self.validation} must be >= 0 examples.")
        if not isinstance(self.source, str) or not self.source:
            raise ConfigError(f"data.source={self.source!r} must name a source: auto, or one `tflottery data` lists.")
        for name in ("data_dir", "manual_dir"):
            if getattr(self, name) == "":
                raise ConfigError(f"data.{name} is empty: name a folder, or leave the flag out.")


@dataclass(slots=True)
class ModelConfig:
    name: str = setting("lenet_300_100", "a name in the zoo: `tflottery models`")
    architecture: Optional[str] = setting(None, "digest of a user-supplied model's JSON (set by find_ticket)")

    def validate(self) -> None:
        check_types(self, "model")
        if not self.name:
            raise ConfigError("model.name is empty: see `tflottery models`.")


@dataclass(slots=True)
class TrainingConfig:
    """How one level trains. Lengths are steps: '500it', '2ep', '1ep100it'."""

    optimizer: str = setting("adam", "adam | sgd")
    lr: float = setting(1.2e-3, "peak learning rate")
    momentum: float = setting(0.0, "sgd only")
    nesterov: bool = setting(False, "sgd: Nesterov momentum")
    weight_decay: float = setting(0.0, "decoupled weight decay")
    batch_size: int = setting(60, "examples per step")
    steps: str = setting("2ep", "training length of one level")
    warmup: str = setting("0it", "linear learning-rate warm-up")
    milestones: list[str] = setting(help="lr drops at these steps ...", factory=list)
    gamma: float = setting(0.1, "... by this factor")
    precision: Optional[str] = setting(None, "None = float32; mixed_float16 (GPU) or mixed_bfloat16 (CPU/TPU)")
    keras: int = setting(2, "2: tf_keras + tfmot wrappers (the default); 3: Keras 3 (`import keras`) on --backend")
    backend: Optional[str] = setting(None, "Keras 3's backend: tensorflow | jax | torch (default: $KERAS_BACKEND, else "
                                           "tensorflow); part of the run's identity")
    eval_every: str = unhashed("1ep", "evaluate validation and test sets this often (does not change training)")
    distribute: str = unhashed("none", "none | mirrored (this machine's GPUs) | multi_worker (TF_CONFIG)")
    steps_per_execution: int = unhashed(50, "steps per compiled call (speed, not science)")
    jit_compile: Any = unhashed("auto", "XLA-compile the training step: auto (XLA on a GPU; on a CPU the graph "
                                        "with fused kernels), true or false; a run keeps the choice it began with")
    tensorboard: bool = unhashed(False, "write TensorBoard logs per level")
    verbose: bool = unhashed(True, "a progress line per level")

    def validate(self) -> None:
        check_types(self, "training")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"training.optimizer={self.optimizer!r} is unknown: use adam or sgd.")
        in_range("training.lr", self.lr, 0.0, 10.0, low_open=True, hint="the peak learning rate, e.g. 0.0012.")
        in_range("training.momentum", self.momentum, 0.0, 1.0, high_open=True)
        if self.optimizer != "sgd" and (self.momentum or self.nesterov):
            raise ConfigError("training.momentum/nesterov apply to --optimizer=sgd only; Adam keeps its own moments.")
        in_range("training.weight_decay", self.weight_decay, 0.0, 1.0)
        in_range("training.gamma", self.gamma, 0.0, 1.0, low_open=True)
        if self.batch_size < 1:
            raise ConfigError(f"training.batch_size={self.batch_size} must be >= 1.")
        for name in ("steps", "eval_every", "warmup"):
            Step.parse(getattr(self, name), f"training.{name}")
        if Step.parse(self.eval_every) == Step():
            raise ConfigError("training.eval_every=0it never evaluates: give a step such as '1ep' or '500it'.")
        for m in self.milestones:
            Step.parse(m, "training.milestones")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"training.precision={self.precision!r}: use mixed_float16 or mixed_bfloat16 (or leave unset).")
        self._check_keras()
        if self.distribute not in DISTRIBUTE:
            raise ConfigError(f"training.distribute={self.distribute!r}: use none, mirrored or multi_worker.")
        if self.steps_per_execution < 1:
            raise ConfigError(f"training.steps_per_execution={self.steps_per_execution} must be >= 1.")
        if self.jit_compile != "auto":
            try:
                self.jit_compile = as_bool(self.jit_compile, "training.jit_compile")
            except ConfigError:
                raise ConfigError(f"training.jit_compile={self.jit_compile!r} must be auto, true or false.") from None

    def _check_keras(self) -> None:
        """Keras 2 or 3; Keras 3's backend resolved now (it defines the run), as Keras itself would pick it."""
        import os

        if self.keras not in (2, 3) or isinstance(self.keras, bool):
            raise ConfigError(f"training.keras={self.keras!r}: 2 (tf_keras + tfmot, the default) or 3 (Keras 3).")
        if self.keras == 2:
            if self.backend is not None:
                raise ConfigError(f"training.backend={self.backend!r} is Keras 3's: add --keras=3, or drop --backend "
                                  "(tf_keras runs on TensorFlow).")
            return
        self.backend = self.backend or os.environ.get("KERAS_BACKEND") or "tensorflow"
        if self.backend not in KERAS3_BACKENDS:
            raise ConfigError(f"training.backend={self.backend!r}: tflottery trains Keras 3 on "
                              f"{', '.join(KERAS3_BACKENDS)}.")
        import sys

        if "keras" not in sys.modules:  # Keras 3 reads its backend once, when it loads (tfmot loads it too)
            os.environ["KERAS_BACKEND"] = self.backend


@dataclass(slots=True)
class PruningConfig:
    """The pruning rule: what IMP removes at each level and where the survivors go back to.

    `strategy` names a registered pruning strategy and `settings` holds that strategy's own
    settings (layerwise: dense_rate, conv_rate, output_rate, layer_rates; global: rate; ...):
    `tflottery find --strategy=NAME --help` lists them. `structure` is what is pruned as one
    unit: weights (default), blocks ({"block": [1, 4]}), N:M groups ({"n": 2, "m": 4}) or whole
    channels ("channels", layer by layer). The engine's resolver checks both against their registries.
    """

    strategy: str = setting("layerwise", "layerwise | global | early_bird (`tflottery find --strategy=NAME --help`)")
    settings: dict[str, Any] = setting(help="the strategy's own settings; flags give them directly (--dense_rate=0.2)",
                                       factory=dict)
    structure: Optional[dict[str, Any]] = setting(None, "unit of pruning: {'block': [1, 4]}, {'n': 2, 'm': 4} or "
                                                        "channels; default weight by weight")
    unpruned: list[str] = setting(help="left dense, counted: layer names, weight paths or globs", factory=list)
    prune: list[str] = setting(help="which weights are pruning targets: layer names, weight paths or globs "
                                    "('*/bias', 'gate/w'); '!pattern' takes matching ones out, said as left dense "
                                    "(default: every registered layer kind's)", factory=list)
    one_shot: bool = setting(False, "prune from the dense network straight to each level's sparsity")
    rewind: str = setting("0it", "rewind survivors to this step of the dense run (0it = initialisation), or auto")
    rewind_grid: list[str] = setting(help="rewind=auto: steps probed (default 0it,100it,500it,1ep,2ep)", factory=list)
    lr_rewind: bool = setting(False, "Renda et al. 2020: keep trained weights, rewind only the lr schedule")

    def validate(self) -> None:
        check_types(self, "pruning")
        if not self.strategy:
            raise ConfigError("pruning.strategy is empty: use layerwise, global or early_bird.")
        if self.rewind == "auto":
            for step in self.rewind_grid:
                Step.parse(step, "pruning.rewind_grid")
        else:
            Step.parse(self.rewind, "pruning.rewind")
            if self.rewind_grid:
                raise ConfigError("pruning.rewind_grid is the set of steps --rewind=auto probes: give it with "
                                  "--rewind=auto, or drop it.")
        if self.one_shot and self.lr_rewind and self.strategy != "early_bird":
            raise ConfigError("pruning.one_shot and pruning.lr_rewind do not combine: one-shot levels start from "
                              "the rewind point, lr rewinding from the previous level's weights.")

    @classmethod
    def from_dict(cls, values: Any) -> "PruningConfig":
        """A PruningConfig; keys that are not its fields are the strategy's settings given directly
        (`{"strategy": "layerwise", "dense_rate": 0.3}`), checked by the resolver."""
        if isinstance(values, cls):
            values = dataclasses.asdict(values)
        if not isinstance(values, dict):
            raise ConfigError(f"pruning must be a mapping of its fields, got {type(values).__name__}.")
        if isinstance(values.get("structure"), str) and values["structure"]:  # --structure=channels: its kind
            values = {**values, "structure": {"kind": values["structure"]}}
        names = {f.name for f in dataclasses.fields(cls)}
        direct = {k: v for k, v in values.items() if k not in names}
        settings = values.get("settings") or {}
        if not isinstance(settings, dict):
            raise ConfigError(f"pruning.settings={settings!r} must be a mapping of the strategy's settings.")
        twice = sorted(set(direct) & set(settings))
        if twice:
            raise ConfigError(f"pruning: {twice} given both directly and in pruning.settings: give each once.")
        return build(cls, {**{k: v for k, v in values.items() if k in names}, "settings": {**settings, **direct}},
                     "pruning")


@dataclass(slots=True)
class RunConfig:
    """One IMP experiment: data, model, pruning and training (its identity), how far it goes, and where."""

    data: DataConfig = setting(help="", factory=DataConfig)
    model: ModelConfig = setting(help="", factory=ModelConfig)
    pruning: PruningConfig = setting(help="", factory=PruningConfig)
    training: TrainingConfig = setting(help="", factory=TrainingConfig)
    plan: PlanConfig = setting(help="", factory=PlanConfig)
    seed: int = setting(0, "initialisation and batch order (each replicate, level and branch derives its own)")
    runs_dir: str = unhashed("runs", "where run directories go")
    force: bool = unhashed(False, "go past the safety limits knowingly (more than 10M steps a level)")

    def validate(self) -> "RunConfig":
        check_types(self, "run")
        for section in (self.data, self.model, self.pruning, self.training, self.plan):
            section.validate()
        if not 0 <= self.seed < 2 ** 31:
            raise ConfigError(f"seed={self.seed} must lie in [0, 2**31).")
        if not self.runs_dir:
            raise ConfigError("runs_dir is empty: name a folder for run directories (default 'runs').")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: "dict | RunConfig | None") -> "RunConfig":
        """A RunConfig from a dict of sections (or a RunConfig, copied); unknown keys are named."""
        if isinstance(d, RunConfig):
            d = d.to_dict()
        d = {} if d is None else d
        if not isinstance(d, dict):
            raise ConfigError(f"A run configuration is a mapping of sections, got {type(d).__name__}.")
        unknown = set(d) - set(SECTIONS) - TOP_LEVEL
        if unknown:
            raise ConfigError(f"run: unknown field(s) {sorted(map(str, unknown))}; sections are {', '.join(SECTIONS)} "
                              f"and top-level fields {', '.join(sorted(TOP_LEVEL))}.")
        sections = {name: (PruningConfig.from_dict(d.get(name, {})) if section is PruningConfig
                           else build(section, d.get(name, {}), name)) for name, section in SECTIONS.items()}
        config = cls(**sections, **{k: d[k] for k in TOP_LEVEL if k in d})
        check_types(config, "run")
        return config


SECTIONS: dict[str, Any] = {"data": DataConfig, "model": ModelConfig, "pruning": PruningConfig,
                            "training": TrainingConfig, "plan": PlanConfig}
TOP_LEVEL = {"seed", "runs_dir", "force"}
