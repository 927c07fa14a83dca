"""Layerwise IMP (Frankle & Carbin): each layer loses its own rate of survivors per level."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from tflottery.config import setting
from tflottery.core.errors import ConfigError
from tflottery.core.names import selected
from tflottery.pruning import masks as mask_lib
from tflottery.pruning.strategies.base import KINDS, PruningStrategy, check_rate, in_units


class Layerwise(PruningStrategy):
    """Dense 20%, conv 10%, the output layer at half its kind's rate, any layer overridden by name. Embedding
    tables, recurrent kernels and attention projections are weight matrices: the dense rate unless set."""

    name = "layerwise"
    description = "each layer loses its own rate of survivors per level (Frankle & Carbin)"

    @dataclass
    class Settings:
        dense_rate: float = setting(0.2, "fraction removed per level, per dense layer")
        conv_rate: float = setting(0.1, "... per convolution")
        output_rate: Optional[float] = setting(None, "... for the output layer (default half its kind's rate)")
        embedding_rate: Optional[float] = setting(None, "... per embedding table (default the dense rate; 0 leaves "
                                                        "them dense, as Chen et al. 2020 do for BERT)")
        recurrent_rate: Optional[float] = setting(None, "... per recurrent kernel, input and recurrent (default the "
                                                        "dense rate)")
        attention_rate: Optional[float] = setting(None, "... per attention projection (default the dense rate)")
        layer_rates: dict[str, float] = setting(help="overrides by layer name, weight path or glob, e.g. "
                                                     "{\"fc1\": 0.3, \"*/query/*\": 0.1}", factory=dict)

    @classmethod
    def check_settings(cls, s) -> None:
        for name in ("dense_rate", "conv_rate", "output_rate", "embedding_rate", "recurrent_rate", "attention_rate"):
            check_rate(name, getattr(s, name))
        for layer, rate in s.layer_rates.items():
            check_rate(f"layer_rates[{layer!r}]", rate)

    def __init__(self, settings, kinds, shapes, structure, unpruned=(), one_shot=False):
        super().__init__(settings, kinds, shapes, structure, unpruned, one_shot)
        for kind in KINDS:  # a rate for layers the model lacks
            name = f"{kind}_rate"
            if getattr(settings, name) != getattr(type(settings)(), name) and kind not in kinds.values():
                layers = dict.fromkeys(k.split('/')[0] for k in kinds)
                raise ConfigError(f"pruning.{name}={getattr(settings, name)} is for {kind} layers, and this model has "
                                  f"none (its prunable layers: {', '.join(layers)}): leave it out, or set the rate of "
                                  "the kind it has.")
        output = list(kinds)[-1]
        self.rates = {}
        for k, kind in kinds.items():
            base = self.kind_rate(kind)
            output_rate = settings.output_rate if settings.output_rate is not None else base / 2
            self.rates[k] = output_rate if k == output else base
        for name, rate in settings.layer_rates.items():
            for k in selected(kinds, [name]):
                self.rates[k] = float(rate)
        for k in self.exempt:
            self.rates[k] = 0.0

    def kind_rate(self, kind: str) -> float:
        """The rate of a target of rate kind `kind` (before the output's and per-layer overrides)."""
        s = self.settings
        if kind == "conv":
            return s.conv_rate
        own = getattr(s, f"{kind}_rate") if kind != "dense" else None
        return s.dense_rate if own is None else own

    def named_layers(self) -> list:
        return list(self.settings.layer_rates)

    def identity(self) -> dict:
        return {"strategy": self.name, "rates": dict(self.rates)}

    def next_counts(self, counts: dict) -> dict:
        return {k: in_units(n, self.structure.unit(k), self.rates[k]) for k, n in counts.items()}

    def capped(self, row: dict) -> dict:
        return {k: min(n, self.structure.cap(k)) if k in self.pruned else n for k, n in row.items()}

    def select(self, weights, masks, counts):
        out = {}
        for k, m in masks.items():
            scores, alive = self.structure.units(k, weights[k], m)
            drop = int(np.sum(alive)) - counts[k] // self.structure.unit(k)  # in units: rows that followed do not count
            out[k] = self.structure.expand(k, mask_lib.drop_smallest(scores, alive, drop)).reshape(m.shape)
        return out
