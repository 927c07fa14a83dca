"""tflottery: lottery tickets for Keras — IMP with rewinding on tfmot, tickets, transfer, TFLite.

What `import tflottery` changes in your process: it sets `TF_USE_LEGACY_KERAS=1` before
TensorFlow loads (tfmot works only with Keras 2, so `tf.keras` becomes tf_keras; `import
keras` stays Keras 3), and unless you set `TF_CPP_MIN_LOG_LEVEL` yourself it sets it to 2 and
filters TensorFlow's C++ start-up lines from stderr, as the command line does. The public API
is imported lazily, so `import tflottery` stays cheap.
"""
import os

USER_TF_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")  # the user's own setting wins over ours
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.3.0"

_PUBLIC = {
    "find_ticket": "tflottery.api", "plan_ticket": "tflottery.api", "transfer": "tflottery.api",
    "verdict": "tflottery.api", "run_worker": "tflottery.api", "run_status": "tflottery.api",
    "load_ticket": "tflottery.tickets", "read_ticket": "tflottery.tickets", "export_ticket": "tflottery.tickets",
    "apply_ticket": "tflottery.tickets",
    "convert": "tflottery.deploy",
    "RunConfig": "tflottery.config", "DataConfig": "tflottery.config", "ModelConfig": "tflottery.config",
    "PruningConfig": "tflottery.config", "TrainingConfig": "tflottery.config", "PlanConfig": "tflottery.config",
    "derive_seed": "tflottery.core.seeds",
    "TflotteryError": "tflottery.core.errors", "ConfigError": "tflottery.core.errors",
    "TicketError": "tflottery.core.errors", "ConversionError": "tflottery.core.errors",
    "DataUnavailableError": "tflottery.core.errors", "RunError": "tflottery.core.errors",
    "ModelError": "tflottery.core.errors",
    "Branch": "tflottery.engine.branches", "BranchStart": "tflottery.engine.branches",
    "PruningStrategy": "tflottery.pruning.strategies", "Structure": "tflottery.pruning.structures",
    "custom_objects": "tflottery.pruning.wrap",
    "IMPSchedule": "tflottery.pruning.schedule",
    "prune_imp": "tflottery.pruning.own_fit", "Rewind": "tflottery.pruning.own_fit",
    "imp_steps": "tflottery.pruning.own_fit", "WarmupPiecewise": "tflottery.core.schedules",
    "EarlyBird": "tflottery.pruning.early_bird",
    "Keras3IMP": "tflottery.pruning.keras3", "TicketMask": "tflottery.pruning.keras3",
    "instability": "tflottery.analysis.instability", "compare": "tflottery.analysis.compare",
}
_REGISTER = {"register_branch": "tflottery.engine.branches", "register_strategy": "tflottery.pruning.strategies",
             "register_structure": "tflottery.pruning.structures", "register_model": "tflottery.models"}
SUBPACKAGES = ("analysis", "api", "cli", "config", "core", "data", "deploy", "engine", "models", "plots", "pruning",
               "recipes", "report", "tickets", "tuning")
__all__ = sorted([*_PUBLIC, *_REGISTER])


def __getattr__(name):
    import importlib

    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _REGISTER:
        return getattr(importlib.import_module(_REGISTER[name]), "register")
    if name in SUBPACKAGES:
        return importlib.import_module(f"tflottery.{name}")
    raise AttributeError(f"module 'tflottery' has no attribute {name!r}")


if USER_TF_LOG_LEVEL is None and os.environ.get("TFLOTTERY_QUIET", "1") != "0":
    from tflottery.core.quiet import quiet_tensorflow_startup

    quiet_tensorflow_startup()
