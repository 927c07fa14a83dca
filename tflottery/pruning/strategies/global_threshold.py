"""Global IMP: one magnitude threshold over the survivors of all pruned layers (tfmot has none)."""
from __future__ import annotations

from dataclasses import dataclass

from tflottery.config import setting
from tflottery.core.errors import ConfigError
from tflottery.core.names import layer_of
from tflottery.pruning import masks as mask_lib
from tflottery.pruning.strategies.base import GLOBAL, PruningStrategy, check_rate, in_units


class Global(PruningStrategy):
    """Each level removes `rate` of all survivors together, so layers lose different fractions."""

    name = "global"
    description = "one magnitude threshold over all survivors; rate of them removed per level"

    @dataclass
    class Settings:
        rate: float = setting(0.2, "fraction of all surviving weights removed per level")

    @classmethod
    def check_settings(cls, s) -> None:
        check_rate("rate", s.rate)
        if s.rate == 0:
            raise ConfigError("pruning.rate=0 removes nothing: every level would be the dense network again; "
                              "give the fraction removed per level, e.g. --rate=0.2.")

    def __init__(self, settings, kinds, shapes, structure, unpruned=(), one_shot=False):
        super().__init__(settings, kinds, shapes, structure, unpruned, one_shot)
        units = {self.structure.unit(k) for k in self.pruned}
        if len(units) > 1:
            loose = [layer_of(k) for k in self.pruned if self.structure.unit(k) == 1]
            raise ConfigError(f"pruning.strategy=global ranks one kind of unit across layers, but "
                              f"{', '.join(loose)} cannot be pruned in the structure's units (a convolution, or listed "
                              "as unstructured): use --strategy=layerwise, or leave them dense with --unpruned.")
        self.unit = units.pop()

    def identity(self) -> dict:
        return {"strategy": self.name, "rate": self.settings.rate, "exempt": sorted(self.exempt)}

    def initial_row(self) -> dict:
        return {**{k: self.sizes[k] for k in self.exempt}, GLOBAL: sum(self.sizes[k] for k in self.pruned)}

    def next_counts(self, counts: dict) -> dict:
        return {**{k: counts[k] for k in self.exempt}, GLOBAL: in_units(counts[GLOBAL], self.unit, self.settings.rate)}

    def capped(self, row: dict) -> dict:
        return {**row, GLOBAL: min(row[GLOBAL], sum(self.structure.cap(k) for k in self.pruned))}

    def select(self, weights, masks, counts):
        units = {k: self.structure.units(k, weights[k], masks[k]) for k in self.pruned}
        alive = sum(int(masks[k].sum()) for k in self.pruned)
        kept = mask_lib.drop_smallest_global({k: u[0] for k, u in units.items()}, {k: u[1] for k, u in units.items()},
                                             self.pruned, (alive - counts[GLOBAL]) // self.unit)
        return {**{k: masks[k].copy() for k in self.exempt},
                **{k: self.structure.expand(k, kept[k]).reshape(masks[k].shape) for k in self.pruned}}

    def table_counts(self, row: dict) -> dict:
        return {k: (row[k] if k in self.exempt else None) for k in self.sizes}
