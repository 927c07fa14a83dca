"""Pruning strategies: each owns its rates, its plan, target_remaining -> levels, and one-shot.

A strategy turns the pruning config and the model's prunable layers into a *plan*: the exact
number of surviving weights at every level (per layer for layerwise pruning, in total for
global pruning). Pruning a level removes survivors of the previous mask down to the plan's
counts, smallest trained magnitude first. Iterative and one-shot pruning use the same plan:
one-shot prunes level 0's trained weights straight to level L's counts, so
`--one_shot --levels=15` reaches exactly the fraction that 15 iterative levels reach.

Adding a strategy: subclass `PruningStrategy`, name the rate fields it reads in `reads`,
implement `_level_counts` and `prune`, and decorate it with `@register`.
"""
from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np

from tflottery.config.fields import in_range
from tflottery.errors import ConfigError
from tflottery.pruning import masks as mask_lib

RATE_FIELDS = ("rate", "dense_rate", "conv_rate", "output_rate", "layer_rates", "early_bird_window",
               "early_bird_threshold", "early_bird_every", "block_shape", "unstructured")  # read by some strategies
STRATEGIES: dict[str, type] = {}
GLOBAL = "(global)"  # the key of a global plan row's total over the pruned layers


def register(cls):
    STRATEGIES[cls.name] = cls
    return cls


def strategy_class(name: str) -> type:
    if name not in STRATEGIES:
        raise ConfigError(f"pruning.strategy={name!r} is unknown: use {' or '.join(STRATEGIES)}.")
    return STRATEGIES[name]


class PruningStrategy:
    """The pruning rule of a run, bound to one model's prunable layers.

    `kinds` maps each prunable weight ("<layer>/kernel") to "dense" or "conv", in model order
    (the last is the output layer); `sizes` gives its number of weights.
    """

    name: ClassVar[str]
    reads: ClassVar[tuple] = ()
    defaults: ClassVar[dict] = {}

    def __init__(self, config, kinds: dict, sizes: dict):
        self.config, self.kinds, self.sizes = config, dict(kinds), dict(sizes)
        layers = {k.split("/")[0]: k for k in kinds}
        for name in list(config.layer_rates) + list(config.unpruned):
            if name not in layers:
                raise ConfigError(f"pruning: no prunable layer named {name!r}; prunable layers: {', '.join(layers)}.")
        self.exempt = [layers[n] for n in config.unpruned]
        self.pruned = [k for k in kinds if k not in self.exempt]
        if not self.pruned:
            raise ConfigError("pruning.unpruned leaves no layer to prune: remove a name from --unpruned.")

    # ------------------------------------------------------------------ config
    @classmethod
    def check_config(cls, config) -> None:
        """Refuse rates this strategy does not read; check the ones it does."""
        unused = [f for f in RATE_FIELDS if f not in cls.reads and getattr(config, f) not in (None, {}, [])]
        if unused:
            raise ConfigError(f"pruning.strategy={cls.name} does not use {', '.join(unused)}: it reads "
                              f"{', '.join(cls.reads)}. Remove the flag, or choose the strategy that reads it.")
        for f in cls.reads:
            values = getattr(config, f)
            if f.startswith("early_bird") or f in ("block_shape", "unstructured"):
                continue
            for key, value in (values.items() if isinstance(values, dict) else [(None, values)]):
                in_range(f"pruning.{f}" + (f"[{key}]" if key else ""), value, 0.0, 1.0, high_open=True,
                         hint="the fraction of surviving weights removed per level.")

    def value(self, field: str):
        """A rate field of the config, or this strategy's default for it."""
        value = getattr(self.config, field)
        return self.defaults.get(field) if value is None else value

    def identity(self) -> dict:
        """What of this rule defines a run (resolved: explicit defaults and implicit ones hash alike)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ plan
    def _level_counts(self, counts: dict) -> dict:
        """Survivor counts of the next level from this level's counts {weight: n}."""
        raise NotImplementedError

    def initial_row(self) -> dict:
        """Level 0's plan row: every weight survives."""
        return dict(self.sizes)

    def plan(self, levels: int) -> list[dict]:
        """Survivor counts for levels 0..levels (per weight, or per exempt weight plus a global total);
        exact, known before training."""
        rows = [self.initial_row()]
        for _ in range(levels):
            rows.append(self._level_counts(rows[-1]))
        return rows

    def levels_for(self, target: float, limit: int = 200) -> int:
        """The fewest levels after which at most `target` of the prunable weights remain."""
        full, row = sum(self.sizes.values()), self.initial_row()
        for level in range(1, limit + 1):
            row = self._level_counts(row)
            if total(row) <= target * full:
                return level
        raise ConfigError(f"plan.target_remaining={target} is not reached in {limit} levels at these rates: "
                          "raise the rates or the target.")

    def prune(self, weights: dict, masks: dict, counts: dict) -> dict:
        """Masks inside `masks` with the surviving counts of a plan row, by trained magnitude."""
        raise NotImplementedError

    def table_counts(self, row: dict) -> dict:
        """A plan row as the dry run shows it: per-layer counts, None where only the total is planned."""
        return dict(row)

    @property
    def from_dense(self) -> bool:
        """Whether every pruned level is pruned from the dense network's trained weights (one-shot)."""
        return self.config.one_shot


@register
class Layerwise(PruningStrategy):
    """Each layer loses its own rate of survivors per level (Frankle & Carbin): dense 20%, conv 10%,
    the output layer at half its kind's rate, any layer overridden by name."""

    name = "layerwise"
    reads = ("dense_rate", "conv_rate", "output_rate", "layer_rates")
    defaults = {"dense_rate": 0.2, "conv_rate": 0.1}

    def __init__(self, config, kinds: dict, sizes: dict):
        super().__init__(config, kinds, sizes)
        output = list(kinds)[-1]
        layers = {k.split("/")[0]: k for k in kinds}
        self.rates = {}
        for k, kind in kinds.items():
            base = self.value("dense_rate" if kind == "dense" else "conv_rate")
            output_rate = config.output_rate if config.output_rate is not None else base / 2
            self.rates[k] = output_rate if k == output else base
        for name, rate in config.layer_rates.items():
            self.rates[layers[name]] = float(rate)
        for k in self.exempt:
            self.rates[k] = 0.0

    def identity(self) -> dict:
        return {"strategy": self.name, "rates": dict(self.rates)}

    def _level_counts(self, counts: dict) -> dict:
        return {k: n - int(round(self.rates[k] * n)) for k, n in counts.items()}

    def prune(self, weights: dict, masks: dict, counts: dict) -> dict:
        return {k: mask_lib.drop_smallest(weights[k], m, int(m.sum()) - counts[k]) for k, m in masks.items()}


@register
class Global(PruningStrategy):
    """One magnitude threshold over the survivors of all pruned layers (tfmot has none; computed here):
    each level removes `rate` of all survivors together, so layers lose different fractions."""

    name = "global"
    reads = ("rate",)
    defaults = {"rate": 0.2}

    def identity(self) -> dict:
        return {"strategy": self.name, "rate": self.value("rate"), "exempt": sorted(self.exempt)}

    def _level_counts(self, counts: dict) -> dict:
        alive = counts[GLOBAL]
        return {**{k: counts[k] for k in self.exempt}, GLOBAL: alive - int(round(self.value("rate") * alive))}

    def initial_row(self) -> dict:
        return {**{k: self.sizes[k] for k in self.exempt}, GLOBAL: sum(self.sizes[k] for k in self.pruned)}

    def prune(self, weights: dict, masks: dict, counts: dict) -> dict:
        alive = sum(int(masks[k].sum()) for k in self.pruned)
        return mask_lib.drop_smallest_global(weights, masks, self.pruned, alive - counts[GLOBAL])

    def table_counts(self, row: dict) -> dict:
        return {k: (row[k] if k in self.exempt else None) for k in self.sizes}


@register
class EarlyBird(Layerwise):
    """Layerwise magnitude pruning to one target, drawn during dense training (You et al. 2020): the
    dense level stops once the last `early_bird_window` masks differ by at most `early_bird_threshold`
    (see `tflottery.pruning.early_bird`); the ticket is pruned from those weights in one shot."""

    name = "early_bird"
    reads = Layerwise.reads + ("early_bird_window", "early_bird_threshold", "early_bird_every")
    defaults = {**Layerwise.defaults, "early_bird_window": 5, "early_bird_threshold": 0.1, "early_bird_every": "1ep"}

    @classmethod
    def check_config(cls, config) -> None:
        from tflottery.config import Step
        from tflottery.pruning.early_bird import check_rule

        super().check_config(config)
        window = config.early_bird_window if config.early_bird_window is not None else cls.defaults["early_bird_window"]
        threshold = config.early_bird_threshold if config.early_bird_threshold is not None \
            else cls.defaults["early_bird_threshold"]
        check_rule(0.5, window, threshold)
        Step.parse(config.early_bird_every or "1ep", "pruning.early_bird_every")

    def identity(self) -> dict:
        return {**super().identity(), "strategy": self.name, "window": self.value("early_bird_window"),
                "threshold": self.value("early_bird_threshold"), "every": self.value("early_bird_every")}

    @property
    def from_dense(self) -> bool:
        return True


def kernel_warning(block_shape: list) -> Optional[str]:
    """Why blocks of `block_shape` ([out, in] in TFLite) will not run faster in LiteRT, or None if they can."""
    rows, cols = block_shape
    if rows == 1 and cols % 4 == 0:
        return None
    return (f"TFLite has sparse FULLY_CONNECTED kernels for 1x4 blocks (float) and 1x16 (int8), none for "
            f"{rows}x{cols}: these blocks will be stored sparsely but computed densely, with no speed-up.")


class _Blocks:
    """Block structure for strategies that prune whole blocks of a kernel (TFLite's sparse kernels skip them).

    `block_shape` [r, c] is given in TFLite's weight layout: a FULLY_CONNECTED weight is [out, in],
    so [1, 4] is 4 consecutive inputs of one output: rows 4i..4i+3 of one column of the Keras
    [in, out] kernel. Convolutions have no sparse kernel in TFLite: they are pruned weight by
    weight (the plan says so), as are layers named in `unstructured`.
    """

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        shape = config.block_shape
        if shape is not None and (len(shape) != 2 or min(shape) < 1):
            raise ConfigError(f"pruning.block_shape={shape} must be two positive sizes [rows, cols] of TFLite's "
                              "[out, in] weights, e.g. [1, 4] (float) or [1, 16] (int8).")

    def _setup_blocks(self):
        shape = self.config.block_shape if self.config.block_shape is not None else [1, 4]
        self.block = (int(shape[1]), int(shape[0]))  # (inputs, outputs) in the Keras kernel
        layers = {k.split("/")[0]: k for k in self.kinds}
        for name in self.config.unstructured:
            if name not in layers:
                raise ConfigError(f"pruning.unstructured: no prunable layer named {name!r}; prunable layers: "
                                  f"{', '.join(layers)}.")
        loose = {layers[n] for n in self.config.unstructured}
        self.blocked = [k for k in self.pruned if self.kinds[k] == "dense" and k not in loose]
        for k in self.blocked:
            rows, cols = self.shapes[k]
            if rows % self.block[0] or cols % self.block[1]:
                raise ConfigError(
                    f"pruning.block_shape={list(shape)} does not divide layer {k.split('/')[0]} ({cols} outputs x {rows} "
                    f"inputs in TFLite's layout): choose a block that divides it, or prune that layer weight by weight "
                    f"with --unstructured='[\"{k.split('/')[0]}\"]'.")
        self.block_size = self.block[0] * self.block[1]
        self.kernel_warning = kernel_warning(list(shape))

    def block_scores(self, weights: np.ndarray) -> np.ndarray:
        """Mean |w| of each block: shape (rows / r, cols / c)."""
        r, c = self.block
        rows, cols = weights.shape
        return np.abs(weights).reshape(rows // r, r, cols // c, c).mean(axis=(1, 3))

    def expand(self, blocks: np.ndarray, shape: tuple) -> np.ndarray:
        return np.repeat(np.repeat(blocks, self.block[0], axis=0), self.block[1], axis=1).reshape(shape)

    def block_mask(self, mask: np.ndarray) -> np.ndarray:
        r, c = self.block
        rows, cols = mask.shape
        return mask.reshape(rows // r, r, cols // c, c).all(axis=(1, 3))

    def note(self) -> str:
        loose = [k.split("/")[0] for k in self.pruned if k not in self.blocked]
        r, c = self.block
        text = f"blocks of {c}x{r} (TFLite [out, in]) in {', '.join(k.split('/')[0] for k in self.blocked)}"
        return text + (f"; weight by weight in {', '.join(loose)}" if loose else "")


@register
class Block(_Blocks, Layerwise):
    """Layerwise IMP in whole blocks: each layer loses its rate of surviving blocks per level, the blocks
    of smallest mean magnitude first, so every mask is made of whole blocks at every level."""

    name = "block"
    reads = Layerwise.reads + ("block_shape", "unstructured")

    def __init__(self, config, kinds: dict, sizes: dict, shapes: Optional[dict] = None):
        super().__init__(config, kinds, sizes)
        self.shapes = shapes or {}
        self._setup_blocks()

    def identity(self) -> dict:
        return {**super().identity(), "strategy": self.name, "block": list(self.block),
                "unstructured": sorted(k for k in self.pruned if k not in self.blocked)}

    def _level_counts(self, counts: dict) -> dict:
        out = {}
        for k, n in counts.items():
            if k in getattr(self, "blocked", ()):
                blocks = n // self.block_size
                out[k] = (blocks - int(round(self.rates[k] * blocks))) * self.block_size
            else:
                out[k] = n - int(round(self.rates[k] * n))
        return out

    def prune(self, weights: dict, masks: dict, counts: dict) -> dict:
        out = {}
        for k, m in masks.items():
            if k not in self.blocked:
                out[k] = mask_lib.drop_smallest(weights[k], m, int(m.sum()) - counts[k])
                continue
            alive = self.block_mask(m)
            drop = (int(m.sum()) - counts[k]) // self.block_size
            out[k] = self.expand(mask_lib.drop_smallest(self.block_scores(weights[k]), alive, drop), m.shape)
        return out


@register
class BlockGlobal(_Blocks, Global):
    """Global IMP in whole blocks: one threshold on the mean magnitude of the surviving blocks of every
    block layer; `rate` of all surviving blocks go per level."""

    name = "block_global"
    reads = Global.reads + ("block_shape",)

    def __init__(self, config, kinds: dict, sizes: dict, shapes: Optional[dict] = None):
        super().__init__(config, kinds, sizes)
        self.shapes = shapes or {}
        self._setup_blocks()
        loose = [k for k in self.pruned if k not in self.blocked]
        if loose:
            raise ConfigError(f"pruning.strategy=block_global prunes blocks only, but {', '.join(k.split('/')[0] for k in loose)} "
                              "cannot be pruned in blocks (a convolution): use --strategy=block, or leave them dense "
                              "with --unpruned.")

    def identity(self) -> dict:
        return {**super().identity(), "strategy": self.name, "block": list(self.block)}

    def _level_counts(self, counts: dict) -> dict:
        blocks = counts[GLOBAL] // self.block_size
        return {**{k: counts[k] for k in self.exempt},
                GLOBAL: (blocks - int(round(self.value("rate") * blocks))) * self.block_size}

    def prune(self, weights: dict, masks: dict, counts: dict) -> dict:
        scores = {k: self.block_scores(weights[k]) for k in self.pruned}
        alive = {k: self.block_mask(masks[k]) for k in self.pruned}
        total = sum(int(a.sum()) for a in alive.values())
        kept = mask_lib.drop_smallest_global(scores, alive, self.pruned, total - counts[GLOBAL] // self.block_size)
        return {**{k: masks[k].copy() for k in self.exempt},
                **{k: self.expand(kept[k], masks[k].shape) for k in self.pruned}}


def total(row: dict) -> int:
    return int(sum(row.values()))


def build_strategy(config, kinds: dict, sizes: dict, shapes: Optional[dict] = None) -> PruningStrategy:
    """The configured strategy for a model's prunable weights (`shapes` is needed by block strategies)."""
    cls = strategy_class(config.strategy)
    if issubclass(cls, _Blocks):
        if shapes is None:
            raise ConfigError(f"pruning.strategy={config.strategy} needs the kernels' shapes.")
        return cls(config, kinds, sizes, shapes)
    return cls(config, kinds, sizes)


def describe(strategy: PruningStrategy, plan: list, one_shot: bool = False, trained: Optional[list] = None) -> str:
    """The dry-run table: surviving weights per layer and level, total and fraction remaining."""
    names = list(strategy.sizes)
    full = sum(strategy.sizes.values())
    head = f"{'level':>5} " + " ".join(f"{n.split('/')[0]:>10}" for n in names) + f" {'total':>10} {'remaining':>9}"
    lines = [head]
    for level, row in enumerate(plan):
        if trained is not None and level not in trained:
            continue
        cells = strategy.table_counts(row)
        text = " ".join(f"{cells[n]:>10}" if cells[n] is not None else f"{'(global)':>10}" for n in names)
        lines.append(f"{level:>5} {text} {total(row):>10} {100 * total(row) / full:>8.1f}%")
    if one_shot:
        lines.append("one-shot: each level is pruned from the dense network's trained weights to these counts")
    if hasattr(strategy, "note"):
        lines.append(strategy.note())
    if getattr(strategy, "kernel_warning", None):
        lines.append(f"warning: {strategy.kernel_warning}")
    return "\n".join(lines)


def layer_sizes(weights: dict, names) -> dict:
    return {k: int(np.prod(np.shape(weights[k]))) for k in names}


def layer_shapes(weights: dict, names) -> dict:
    return {k: tuple(np.shape(weights[k])) for k in names}
