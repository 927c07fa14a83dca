"""Pruning strategies, one registered class per kind, each owning its `Settings`.

Adding a strategy: subclass `PruningStrategy` in a file of its own with `name`, a `Settings`
dataclass, `identity`, `next_counts` and `select`, and `register` it here. Its plan serves
`--dry_run`, `--target_remaining` and `--one_shot` at once, under every structure.
"""
from tflottery.core.deprecation import renamed
from tflottery.pruning.strategies.base import GLOBAL, PruningStrategy, describe, total
from tflottery.pruning.strategies.early_bird import EarlyBirdStrategy
from tflottery.pruning.strategies.global_threshold import Global
from tflottery.pruning.strategies.layerwise import Layerwise

STRATEGIES: dict[str, type] = {}


def register(cls: type) -> type:
    STRATEGIES[cls.name] = cls
    return cls


for _cls in (Layerwise, Global, EarlyBirdStrategy):
    register(_cls)

__all__ = ["GLOBAL", "STRATEGIES", "EarlyBirdStrategy", "Global", "Layerwise", "PruningStrategy", "describe", "register",
           "total"]
__getattr__ = renamed(__name__, {"EarlyBird": ("tflottery.pruning.strategies.early_bird", "EarlyBirdStrategy")})
