"""What defines a run, as dataclasses; validated before any work starts. No TensorFlow here.

A run's identity is what fixes the trajectory of its tickets: data, model, pruning rule,
the training that changes the math, and the seed. `tflottery.engine.imp` resolves it (steps
in iterations, each layer's rate) and hashes it into the run's name. Everything else is
how far the run goes (`PlanConfig`: levels, branches, replicates) or how fast and how loudly
it trains (`unhashed` fields): changing those extends or re-reads a run, never forks it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from tflottery.config.fields import build, check_types, in_range, unhashed
from tflottery.config.plan import PlanConfig
from tflottery.config.steps import Step
from tflottery.errors import ConfigError

SOURCES = ("auto", "tfds", "idx", "sample", "synthetic")


@dataclass
class DataConfig:
    """Which examples a run sees. See `tflottery.data.load`."""

    dataset: str = "mnist"  # mnist, fashion_mnist, kmnist, cifar10, cifar100, svhn_cropped (`tflottery data`)
    labels: Optional[list[int]] = None  # keep only these classes, e.g. [5, 6, 7, 8, 9]
    remap_labels: bool = True  # map the kept labels to 0..k-1
    fraction: float = 1.0  # keep this fraction of the training set ...
    fraction_part: int = 0  # ... namely the part-th disjoint slice (S1=0, S2=1 for halves)
    validation: Optional[int] = None  # examples held out for early stopping; default 5,000, or 10% of a small set
    source: str = "auto"  # auto | tfds | idx | sample | synthetic (generated, for tests)
    data_dir: Optional[str] = unhashed()  # TFDS data directory
    manual_dir: Optional[str] = unhashed()  # IDX files or TFDS manual downloads

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
        if self.source not in SOURCES:
            raise ConfigError(f"data.source={self.source!r} is unknown: use {', '.join(SOURCES)}.")


@dataclass
class ModelConfig:
    name: str = "lenet_300_100"  # a name in the zoo: `tflottery models`
    architecture: Optional[str] = None  # digest of a user-supplied model's JSON (set by find_ticket)

    def validate(self) -> None:
        check_types(self, "model")
        if not self.name:
            raise ConfigError("model.name is empty: see `tflottery models`.")


@dataclass
class TrainingConfig:
    """How one level trains. Lengths are steps: '500it', '2ep', '1ep100it'."""

    optimizer: str = "adam"  # adam | sgd
    lr: float = 1.2e-3  # peak learning rate
    momentum: float = 0.0  # sgd only
    nesterov: bool = False  # sgd: Nesterov momentum
    weight_decay: float = 0.0  # decoupled weight decay
    batch_size: int = 60  # examples per step
    steps: str = "2ep"  # training length of one level
    warmup: str = "0it"  # linear learning-rate warm-up
    milestones: list[str] = field(default_factory=list)  # lr drops at these steps ...
    gamma: float = 0.1  # ... by this factor
    precision: Optional[str] = None  # None = float32; mixed_float16 (GPU) or mixed_bfloat16 (CPU/TPU)
    eval_every: str = unhashed("1ep")  # evaluate validation and test sets this often (does not change training)
    distribute: str = unhashed("none")  # none | mirrored (this machine's GPUs) | multi_worker (TF_CONFIG)
    steps_per_execution: int = unhashed(50)  # steps per compiled call (speed, not science)
    jit_compile: bool = unhashed(True)  # XLA-compile the training step
    tensorboard: bool = unhashed(False)  # write TensorBoard logs per level
    verbose: bool = unhashed(True)  # a progress line per level

    def validate(self) -> None:
        check_types(self, "training")
        if self.optimizer not in ("adam", "sgd"):
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
        for m in self.milestones:
            Step.parse(m, "training.milestones")
        if self.precision not in (None, "float32", "mixed_float16", "mixed_bfloat16"):
            raise ConfigError(f"training.precision={self.precision!r}: use mixed_float16 or mixed_bfloat16 (or leave unset).")
        if self.distribute not in ("none", "mirrored", "multi_worker"):
            raise ConfigError(f"training.distribute={self.distribute!r}: use none, mirrored or multi_worker.")
        if self.steps_per_execution < 1:
            raise ConfigError(f"training.steps_per_execution={self.steps_per_execution} must be >= 1.")

    def identity(self, steps_per_epoch: int) -> dict:
        """The training that changes the math, lengths in iterations (2ep and 1832it are the same run)."""
        steps = lambda s: Step.parse(s).to_steps(steps_per_epoch)  # noqa: E731
        out = {"optimizer": self.optimizer, "lr": self.lr, "batch_size": self.batch_size,
               "steps": steps(self.steps), "weight_decay": self.weight_decay,
               "precision": self.precision or "float32"}
        if self.optimizer == "sgd":
            out.update(momentum=self.momentum, nesterov=self.nesterov)
        if steps(self.warmup):
            out["warmup"] = steps(self.warmup)
        if self.milestones:
            out.update(milestones=sorted(steps(m) for m in self.milestones), gamma=self.gamma)
        return out


@dataclass
class PruningConfig:
    """The pruning rule: what IMP removes at each level and where the survivors go back to.

    Each strategy reads its own rates (`tflottery.pruning.strategies`): layerwise reads
    dense_rate, conv_rate, output_rate and layer_rates; global reads rate. Setting a rate the
    chosen strategy does not use is an error, never silently ignored.
    """

    strategy: str = "layerwise"  # layerwise | global | early_bird | block | block_global (`tflottery.pruning.strategies`)
    rate: Optional[float] = None  # global: fraction of all surviving weights removed per level (default 0.2)
    dense_rate: Optional[float] = None  # layerwise: fraction removed per level, per dense layer (default 0.2)
    conv_rate: Optional[float] = None  # layerwise: ... per convolution (default 0.1)
    output_rate: Optional[float] = None  # layerwise: ... for the output layer (default half its kind's rate)
    layer_rates: dict[str, float] = field(default_factory=dict)  # layerwise: per-layer overrides by name
    early_bird_window: Optional[int] = None  # early_bird: masks compared (default 5) ...
    early_bird_threshold: Optional[float] = None  # ... each consecutive distance at most this (default 0.1) ...
    early_bird_every: Optional[str] = None  # ... drawn this often during dense training (default 1ep)
    block_shape: Optional[list[int]] = None  # block/block_global: [rows, cols] of TFLite's [out, in] weights (default [1, 4])
    unstructured: list[str] = field(default_factory=list)  # block: layers pruned weight by weight instead
    unpruned: list[str] = field(default_factory=list)  # layer names left dense
    one_shot: bool = False  # prune from the dense network straight to each level's sparsity
    rewind: str = "0it"  # rewind survivors to this step of the dense run (0it = initialisation), or auto
    rewind_grid: list[str] = field(default_factory=list)  # rewind=auto: steps probed (default 0it,100it,500it,1ep,2ep)
    lr_rewind: bool = False  # Renda et al. 2020: keep trained weights, rewind only the lr schedule

    def validate(self) -> None:
        from tflottery.pruning.strategies import strategy_class

        check_types(self, "pruning")
        strategy_class(self.strategy).check_config(self)
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


@dataclass
class RunConfig:
    """One IMP experiment: data, model, pruning and training (its identity), how far it goes, and where."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    seed: int = 0  # initialisation and batch order (each replicate, level and branch derives its own)
    runs_dir: str = unhashed("runs")  # where run directories go

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
        config = cls(**{name: build(section, d.get(name, {}), name) for name, section in SECTIONS.items()},
                     **{k: d[k] for k in TOP_LEVEL if k in d})
        check_types(config, "run")
        return config


SECTIONS: dict[str, Any] = {"data": DataConfig, "model": ModelConfig, "pruning": PruningConfig,
                            "training": TrainingConfig, "plan": PlanConfig}
TOP_LEVEL = {"seed", "runs_dir"}
