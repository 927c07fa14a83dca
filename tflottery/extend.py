"""For extension authors: the bases of every kind and the `register_*` lines (tfmot's public face, a few names over
a private core, is the model). A new branch, pruning strategy, structure, analysis, data source or zoo model is a subclass here
and one `register_*` call; trainers and executors are one file and a line in their registries
(`tflottery.engine.trainer.registry.TRAINERS`, `tflottery.engine.executors.EXECUTORS`), held to each
registry's contract tests. Names load lazily: importing this module loads no TensorFlow.
"""
from __future__ import annotations

_NAMES = {
    "Branch": "tflottery.engine.branches", "BranchStart": "tflottery.engine.branches",
    "PruningStrategy": "tflottery.pruning.strategies", "Structure": "tflottery.pruning.structures",
    "Trainer": "tflottery.engine.trainer", "Executor": "tflottery.engine.executors.base",
    "Analysis": "tflottery.analysis.base", "Source": "tflottery.data.sources.base", "derive_seed": "tflottery.core.seeds",
    "register_layer_kind": "tflottery.pruning.targets",  # which variables of a layer class are pruned, at which rate
}
_REGISTER = {"register_branch": "tflottery.engine.branches", "register_strategy": "tflottery.pruning.strategies",
             "register_structure": "tflottery.pruning.structures", "register_model": "tflottery.models",
             "register_analysis": "tflottery.analysis.registry", "register_source": "tflottery.data.sources"}
__all__ = sorted([*_NAMES, *_REGISTER])


def __getattr__(name):
    import importlib

    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    if name in _REGISTER:
        return getattr(importlib.import_module(_REGISTER[name]), "register")
    raise AttributeError(f"module 'tflottery.extend' has no attribute {name!r}")
