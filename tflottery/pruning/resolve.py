"""Pruning names to registered kinds: the strategy and its settings, the structure and its settings.

TensorFlow-free, so the CLI checks every pruning flag before TensorFlow loads. `bind` gives the
strategy for one model's prunable kernels; `check` validates a PruningConfig without a model.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Optional

from tflottery.config import PruningConfig, build
from tflottery.config.fields import describe
from tflottery.core.errors import ConfigError, ModelError
from tflottery.pruning.strategies import STRATEGIES, PruningStrategy
from tflottery.pruning.structures import STRUCTURES, structure_kind

RENAMED_STRATEGIES = {  # 0.2 spellings: one error naming the new one
    "block": "--strategy=layerwise --structure='{\"block\": [1, 4]}'",
    "block_global": "--strategy=global --structure='{\"block\": [1, 4]}'",
}
RENAMED_SETTINGS = {
    "block_shape": "blocks are a structure now: --structure='{\"block\": [1, 4]}'",
    "unstructured": "layers pruned weight by weight under blocks: --structure='{\"block\": [1, 4], \"unstructured\": [\"fc2\"]}'",
}


def strategy_class(name: str) -> type:
    if name in RENAMED_STRATEGIES:
        raise ConfigError(f"pruning.strategy={name!r} is spelled {RENAMED_STRATEGIES[name]} since tflottery 0.3 "
                          "(structure is its own axis; the run keeps its name).")
    if name not in STRATEGIES:
        raise ConfigError(f"pruning.strategy={name!r} is unknown: use {' or '.join(STRATEGIES)}.")
    return STRATEGIES[name]


def strategy_settings(pruning: PruningConfig):
    """The chosen strategy's Settings from `pruning.settings`; a setting it does not read is an error."""
    cls = strategy_class(pruning.strategy)
    known = [f.name for f in dataclasses.fields(cls.Settings)]
    for key in pruning.settings:
        if key in known:
            continue
        if key in RENAMED_SETTINGS:
            raise ConfigError(f"pruning.{key}: {RENAMED_SETTINGS[key]}.")
        readers = [name for name, other in STRATEGIES.items() if key in {f.name for f in dataclasses.fields(other.Settings)}]
        if readers:
            raise ConfigError(f"pruning.strategy={cls.name} does not use {key}: it reads {', '.join(known)}. Remove the "
                              f"flag, or choose the strategy that reads it ({', '.join(readers)}).")
        raise ConfigError(f"Unknown flag --{key}: it is neither a config field (`tflottery find --help`) nor a "
                          f"setting of pruning.strategy={cls.name} ({', '.join(known)}).")
    settings = build(cls.Settings, dict(pruning.settings), f"pruning ({cls.name})")
    cls.check_settings(settings)
    return settings


def structure_of(pruning: PruningConfig):
    """(Structure class, its Settings) of `pruning.structure`."""
    spec = dict(pruning.structure or {})
    kind = structure_kind(spec)
    if kind not in STRUCTURES:
        raise ConfigError(f"pruning.structure kind {kind!r} is unknown: use {', '.join(STRUCTURES)}.")
    cls = STRUCTURES[kind]
    spec.pop("kind", None)
    settings = build(cls.Settings, spec, f"pruning.structure ({kind})")
    cls.check_settings(settings)
    return cls, settings


def deploy_note(pruning: dict) -> "tuple[str, str] | None":
    """What a ticket's structure means on a phone (`Structure.deploy_note`), from its stored pruning config."""
    cls, settings = structure_of(PruningConfig(structure=upgrade(pruning).get("structure") or None))
    return cls.deploy_note(settings)


def check(pruning: PruningConfig) -> None:
    """Every kind `pruning` names exists and its settings are valid (no model needed)."""
    strategy_settings(pruning)
    structure_of(pruning)


def prunable(kinds: dict, model_name: str) -> dict:
    """`kinds` (a model's prunable kernels), or the one error for a model with none."""
    if not kinds:
        raise ModelError(f"Model {model_name!r} has no Dense or Conv layer to prune, nor any other weight a layer "
                         "kind prunes (embeddings, attention, recurrent kernels): choose weights with --prune, or give "
                         "a model with at least one such layer.")
    return kinds


def bind(pruning: PruningConfig, kinds: dict, shapes: dict, model_name: str = "the model",
         uncovered: Optional[dict] = None, graph: Optional[dict] = None) -> PruningStrategy:
    """The configured strategy, under its structure, for a model's prunable kernels (`prunable`: at least one).
    `uncovered` (`wrap.uncovered`: layers with weights no rule prunes) must each be left dense by name in
    `pruning.unpruned`, or the model is refused: no layer is skipped in silence. `graph`: the model's channel graph
    (`tflottery.models.channels.graph`), for a structure that follows it."""
    prunable(kinds, model_name)
    uncovered = dict(uncovered or {})
    silent = {name: what for name, what in uncovered.items() if name not in pruning.unpruned}
    if silent:
        listed = "; ".join(f"{name} ({what})" for name, what in silent.items())
        raise ModelError(f"Model {model_name!r} has weights no rule prunes: {listed}. No registered layer kind "
                         "describes them: prune them by path (--prune='[\"<layer>/<weight>\", ...]' with the other "
                         "targets, or tflottery.extend.register_layer_kind), or leave them dense by name, --unpruned="
                         f"'{json.dumps(sorted(set(pruning.unpruned) | set(silent)))}' (pruning.unpruned), so that "
                         "every weight is counted.")
    settings = strategy_settings(pruning)
    structure, structure_settings = structure_of(pruning)
    if structure.strategies is not None and pruning.strategy not in structure.strategies:
        raise ConfigError(f"pruning.structure {structure.kind} prunes with --strategy="
                          f"{' or '.join(structure.strategies)}, not {pruning.strategy}: {structure.description}.")
    strategy = strategy_class(pruning.strategy)(
        settings, kinds, shapes, lambda k, s, p: structure(structure_settings, k, s, p),
        [n for n in pruning.unpruned if n not in uncovered], pruning.one_shot)
    strategy.left_dense = uncovered
    strategy.structure.bind_graph(graph)
    return strategy


def settings_help(name: str, given: "dict | None" = None) -> list[str]:
    """--help lines of one strategy's settings (every strategy's, when `name` is unknown), with the values
    `given` (a settings dict) where they differ from the defaults."""
    import types

    names = [name] if name in STRATEGIES else list(STRATEGIES)
    lines = []
    for n in names:
        lines.append(f"  settings of --strategy={n} ({STRATEGIES[n].description}):")
        lines += describe(STRATEGIES[n].Settings, prefix="    ",
                          current=types.SimpleNamespace(**given) if given else None)
    lines.append("  structures (--structure): " + "; ".join(f"{k}: {c.description}" for k, c in STRUCTURES.items()))
    return lines


def upgrade(pruning: dict) -> dict:
    """A stored pruning config of tflottery 0.2 (run directories, tickets) in 0.3's spelling: its block
    strategies become layerwise/global under the blocks structure; other keys are left as they are."""
    pruning = dict(pruning)
    strategy = pruning.get("strategy")
    if strategy in RENAMED_STRATEGIES:
        pruning["strategy"] = "global" if strategy == "block_global" else "layerwise"
        settings = dict(pruning.pop("settings", {}) or {})
        block = pruning.pop("block_shape", settings.pop("block_shape", None)) or [1, 4]
        loose = pruning.pop("unstructured", settings.pop("unstructured", None)) or []
        pruning["settings"] = settings
        pruning["structure"] = {"block": list(block), **({"unstructured": list(loose)} if loose else {})}
    for key in ("block_shape", "unstructured"):
        if pruning.get(key) in (None, []):
            pruning.pop(key, None)
    for key in ("rate", "dense_rate", "conv_rate", "output_rate", "early_bird_window", "early_bird_threshold",
                "early_bird_every"):
        if key in pruning and pruning[key] is None:
            pruning.pop(key)
    if pruning.get("layer_rates") == {}:
        pruning.pop("layer_rates")
    return pruning
