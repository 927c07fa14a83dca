"""Configuration as dataclasses: what a run is, validated before any training starts.

Every field is a CLI flag (see `cli.py`). A run's directory name is derived from the
hash of its hyperparameters; fields marked `hashed=False` (logging, paths) and features
that are switched off (None, False, empty) do not enter the hash, so adding a new
optional feature later leaves existing run names unchanged (open_lth's convention).

This module must not import TensorFlow.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional

FORMAT_VERSION = 1


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the fix."""


class TicketError(ValueError):
    """A ticket cannot be used as it is; the message names the file and the problem."""


def _unhashed(default: Any = None, **kwargs) -> Any:
    return field(default=default, metadata={"hashed": False}, **kwargs)


# --------------------------------------------------------------------------- steps
_STEP_RE = re.compile(r"^\s*(?:(\d+)\s*ep)?\s*(?:(\d+)\s*it)?\s*$")


@dataclass(frozen=True)
class Step:
    """A training length written as `500it`, `2ep` or `1ep100it` (open_lth's notation)."""

    epochs: int = 0
    iterations: int = 0

    @classmethod
    def parse(cls, text: "str | int | Step", name: str = "step") -> "Step":
        if isinstance(text, Step):
            return text
        if isinstance(text, int) and not isinstance(text, bool):
            return cls(0, text)
        match = _STEP_RE.match(str(text)) if isinstance(text, str) else None
        if not match or not (match.group(1) or match.group(2)):
            raise ConfigError(
                f"{name}={text!r} is not a step: write iterations and/or epochs as "
                "'500it', '2ep' or '1ep100it'."
            )
        return cls(int(match.group(1) or 0), int(match.group(2) or 0))

    def to_steps(self, steps_per_epoch: int) -> int:
        return self.epochs * steps_per_epoch + self.iterations

    def __str__(self) -> str:
        parts = (f"{self.epochs}ep" if self.epochs else "") + (f"{self.iterations}it" if self.iterations else "")
        return parts or "0it"


# --------------------------------------------------------------------------- sections
@dataclass
class DataConfig:
    """Which examples a run sees. See `tflottery.data.load`."""

    dataset: str = "mnist"  # mnist, fashion_mnist, kmnist, cifar10, cifar100, svhn_cropped (`tflottery data`)
    labels: Optional[list[int]] = None  # keep only these classes, e.g. [5, 6, 7, 8, 9]
    remap_labels: bool = True  # map the kept labels to 0..k-1
    fraction: float = 1.0  # keep this fraction of the training set ...
    fraction_part: int = 0  # ... namely the part-th disjoint slice (S1=0, S2=1 for halves)
    validation: int = 5000  # examples held out of the training set for early stopping
    source: str = "auto"  # auto | tfds | idx | sample | synthetic (generated, for tests)
    data_dir: Optional[str] = _unhashed()  # TFDS data directory
    manual_dir: Optional[str] = _unhashed()  # IDX files or TFDS manual downloads

    def validate(self) -> None:
        if self.labels is not None and len(self.labels) == 0:
            raise ConfigError("data.labels is empty: give at least one class, e.g. --labels='[5,6,7,8,9]'.")
        if not (0.0 < float(self.fraction) <= 1.0):
            raise ConfigError(f"data.fraction={self.fraction} must lie in (0, 1], e.g. 0.5 for the halves S1/S2.")
        parts = int(round(1.0 / self.fraction)) if self.fraction else 1
        if not 0 <= self.fraction_part < max(parts, 1):
            raise ConfigError(
                f"data.fraction_part={self.fraction_part} does not exist for fraction={self.fraction}: "
                f"use 0..{max(parts, 1) - 1}."
            )
        if self.validation < 0:
            raise ConfigError("data.validation must be >= 0 examples.")
        if self.source not in ("auto", "tfds", "idx", "sample", "synthetic"):
            raise ConfigError(f"data.source={self.source!r} is unknown: use auto, tfds, idx, sample or synthetic.")


@dataclass
class ModelConfig:
    name: str = "lenet_300_100"  # a name in the zoo: `tflottery models`
    architecture: Optional[str] = None  # digest of a user-supplied model's JSON (set by find_ticket)

    def validate(self) -> None:
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
    eval_every: str = "1ep"  # evaluate validation and test sets this often
    warmup: str = "0it"  # linear learning-rate warm-up
    milestones: list[str] = field(default_factory=list)  # lr drops at these steps ...
    gamma: float = 0.1  # ... by this factor
    precision: Optional[str] = None  # None = float32; mixed_float16 (GPU) or mixed_bfloat16 (CPU/TPU)
    distribute: str = _unhashed("none")  # none | mirrored (this machine's GPUs) | multi_worker (TF_CONFIG)
    steps_per_execution: int = _unhashed(50)  # steps per compiled call (speed, not science)
    jit_compile: bool = _unhashed(True)  # XLA-compile the training step
    tensorboard: bool = _unhashed(False)  # write TensorBoard logs per level
    verbose: bool = _unhashed(True)  # a progress line per level

    def validate(self) -> None:
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"training.optimizer={self.optimizer!r} is unknown: use adam or sgd.")
        if not self.lr > 0:
            raise ConfigError(f"training.lr={self.lr} must be > 0.")
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
            raise ConfigError("training.steps_per_execution must be >= 1.")


@dataclass
class PruningConfig:
    """What IMP removes at each level and where the survivors go back to."""

    strategy: str = "layerwise"  # layerwise | global
    dense_rate: float = 0.2  # fraction of surviving weights removed per level, per dense layer
    conv_rate: float = 0.1  # ... per convolution
    output_rate: Optional[float] = None  # default: half its kind's rate (Frankle & Carbin's LeNet)
    layer_rates: dict[str, float] = field(default_factory=dict)  # per-layer overrides by name
    unpruned: list[str] = field(default_factory=list)  # layer names left dense
    levels: Optional[int] = 5  # pruning levels after the dense level 0 ...
    target_remaining: Optional[float] = None  # ... or derived: fewest levels reaching this fraction
    one_shot: bool = False  # prune to the final level's sparsity in a single level
    rewind: str = "0it"  # rewind survivors to this step of the dense run (0it = initialisation)
    lr_rewind: bool = False  # Renda et al. 2020: keep trained weights, rewind only the lr schedule
    branches: list[str] = field(default_factory=lambda: ["reinit"])  # baselines: reinit, random_prune

    def validate(self) -> None:
        if self.strategy not in ("layerwise", "global"):
            raise ConfigError(f"pruning.strategy={self.strategy!r} is unknown: use layerwise or global.")
        rates = {"dense_rate": self.dense_rate, "conv_rate": self.conv_rate, "output_rate": self.output_rate}
        rates.update({f"layer_rates[{k}]": v for k, v in self.layer_rates.items()})
        for name, rate in rates.items():
            if rate is not None and not (0.0 <= float(rate) < 1.0):
                raise ConfigError(f"pruning.{name}={rate} must lie in [0, 1): it is the fraction removed per level.")
        if self.levels is None and self.target_remaining is None:
            raise ConfigError("pruning: give levels or target_remaining.")
        if self.target_remaining is None and self.levels is not None and self.levels < 1:
            raise ConfigError(f"pruning.levels={self.levels} must be >= 1: level 0 is the dense network.")
        if self.target_remaining is not None and not (0.0 < self.target_remaining < 1.0):
            raise ConfigError(f"pruning.target_remaining={self.target_remaining} must lie in (0, 1).")
        Step.parse(self.rewind, "pruning.rewind")
        unknown = set(self.branches) - {"reinit", "random_prune"}
        if unknown:
            raise ConfigError(f"pruning.branches has {sorted(unknown)}: use reinit and/or random_prune.")

    def rate_for(self, kind: str, is_output: bool) -> float:
        base = self.dense_rate if kind == "dense" else self.conv_rate
        if is_output:
            return self.output_rate if self.output_rate is not None else base / 2
        return base


@dataclass
class RunConfig:
    """One IMP experiment: data, model, pruning and training, plus where it lives."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    seed: int = 0  # initialisation and batch order
    replicate: int = 0  # replicate index (seeds differ)
    runs_dir: str = _unhashed("runs")  # where run directories go

    def validate(self) -> "RunConfig":
        for section in (self.data, self.model, self.pruning, self.training):
            section.validate()
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return cls(
            data=build(DataConfig, d.get("data", {}), "data"),
            model=build(ModelConfig, d.get("model", {}), "model"),
            pruning=build(PruningConfig, d.get("pruning", {}), "pruning"),
            training=build(TrainingConfig, d.get("training", {}), "training"),
            **{k: v for k, v in d.items() if k not in ("data", "model", "pruning", "training")},
        )

    def run_hash(self) -> str:
        return hashlib.sha256(json.dumps(_hashed_fields(self), sort_keys=True).encode()).hexdigest()[:12]

    def run_name(self) -> str:
        labels = "" if not self.data.labels else "-l" + "".join(map(str, self.data.labels))
        return f"{self.model.name}-{self.data.dataset}{labels}-{self.run_hash()}"


SECTIONS = {"data": DataConfig, "model": ModelConfig, "pruning": PruningConfig, "training": TrainingConfig}
TOP_LEVEL = {"seed", "replicate", "runs_dir"}


def flag_names() -> list[str]:
    return sorted({f for cls in SECTIONS.values() for f in cls.__dataclass_fields__} | TOP_LEVEL | {"model"})


def apply_flag(tree: dict, key: str, value: Any) -> None:
    """Set one command-line flag in a RunConfig dict.

    `key` is a field name that is unique across sections (`levels`, `lr`, `dataset`), `model`
    for the model's name, a top-level field (`seed`), or a dotted path (`training.steps`).
    """
    if "." in key:
        section, _, name = key.partition(".")
        if section not in SECTIONS or name not in SECTIONS[section].__dataclass_fields__:
            raise ConfigError(f"Unknown flag --{key}; sections are {', '.join(SECTIONS)} with fields "
                              f"{', '.join(flag_names())}.")
        tree.setdefault(section, {})[name] = value
    elif key == "model":
        tree.setdefault("model", {})["name"] = value
    elif key in TOP_LEVEL:
        tree[key] = value
    else:
        owners = [s for s, cls in SECTIONS.items() if key in cls.__dataclass_fields__]
        if len(owners) != 1:
            raise ConfigError(f"Unknown flag --{key}; use one of {', '.join(flag_names())}, or a dotted "
                              "path such as --training.steps=2ep.")
        tree.setdefault(owners[0], {})[key] = value


def describe_flags() -> str:
    """Every flag with its default and the comment beside its field, for --help."""
    import inspect

    lines = []
    for section, cls in SECTIONS.items():
        comments = dict(re.findall(r"^\s+(\w+): [^#\n]*#\s*(.*)$", inspect.getsource(cls), re.M))
        lines.append(f"{section}:")
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            lines.append(f"  --{f.name}={default!r}" + (f"  ({comments[f.name]})" if f.name in comments else ""))
    lines.append("run: --seed=0 --replicate=0 --runs_dir='runs'")
    return "\n".join(lines)


def build(cls, values: dict, section: str):
    """Make a config section from a dict, naming any unknown key."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{section}: unknown field(s) {sorted(unknown)}; known: {sorted(names)}.")
    return cls(**values)


def _hashed_fields(obj: Any) -> Any:
    if not dataclasses.is_dataclass(obj):
        return obj
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not f.metadata.get("hashed", True) or value is None or value is False or value in ([], {}):
            continue
        out[f.name] = _hashed_fields(value)
    return out


def levels_for_target(rate_of: dict[str, float], sizes: dict[str, int], target: float, limit: int = 200) -> int:
    """Fewest layerwise levels after which at most `target` of the prunable weights remain."""
    remaining = dict(sizes)
    total = sum(sizes.values())
    for level in range(1, limit + 1):
        remaining = {k: n - int(round(rate_of[k] * n)) for k, n in remaining.items()}
        if sum(remaining.values()) <= target * total:
            return level
    raise ConfigError(f"pruning.target_remaining={target} is not reached in {limit} levels at these rates.")


def fraction_remaining(rate: float, levels: int) -> float:
    return math.pow(1.0 - rate, levels)
