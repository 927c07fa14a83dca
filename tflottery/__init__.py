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

_PUBLIC = {  # what a user needs: the verbs, the configuration, tickets, the own-fit tools, the errors to catch
    "find_ticket": "tflottery.api", "plan_ticket": "tflottery.api", "transfer": "tflottery.api",
    "verdict": "tflottery.api", "run_worker": "tflottery.api", "run_status": "tflottery.api",
    "instability": "tflottery.analysis.instability", "compare": "tflottery.analysis.compare",
    "load_ticket": "tflottery.tickets", "read_ticket": "tflottery.tickets", "export_ticket": "tflottery.tickets",
    "apply_ticket": "tflottery.tickets", "convert": "tflottery.deploy",
    "RunConfig": "tflottery.config",
    "prune_imp": "tflottery.pruning.own_fit", "Rewind": "tflottery.pruning.own_fit",
    "imp_steps": "tflottery.pruning.own_fit", "EarlyBirdCallback": "tflottery.pruning.early_bird",
    "Keras3IMP": "tflottery.pruning.keras3", "TicketMask": "tflottery.pruning.keras3",
    "IMPSchedule": "tflottery.pruning.schedule", "WarmupPiecewise": "tflottery.core.schedules",
    "custom_objects": "tflottery.pruning.wrap",
    "TflotteryError": "tflottery.core.errors", "ConfigError": "tflottery.core.errors",
}
_MOVED = {  # 0.3's names, kept for one release with a warning: name -> (module, where it lives now)
    **{n: ("tflottery.config", "tflottery.config")
       for n in ("DataConfig", "ModelConfig", "PruningConfig", "TrainingConfig", "PlanConfig")},
    **{n: ("tflottery.core.errors", "tflottery.core.errors")
       for n in ("TicketError", "ConversionError", "DataUnavailableError", "RunError", "ModelError")},
    **{n: (None, "tflottery.extend") for n in ("derive_seed", "Branch", "BranchStart", "PruningStrategy", "Structure",
                                               "register_branch", "register_strategy", "register_structure",
                                               "register_model")},
}
_RENAMED = {"EarlyBird": ("tflottery.pruning.early_bird", "EarlyBirdCallback")}  # 0.3's name -> (module, 0.4's name)
SUBPACKAGES = ("analysis", "api", "cli", "config", "core", "data", "deploy", "engine", "extend", "models", "plots",
               "pruning", "recipes", "report", "tickets", "tuning")
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    import importlib

    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _MOVED:
        import warnings

        module, home = _MOVED[name]
        warnings.warn(f"tflottery.{name} is now {home}.{name}; the old name goes in 0.5.", DeprecationWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(module or home), name)
    if name in _RENAMED:
        from tflottery.core.deprecation import renamed

        return renamed("tflottery", _RENAMED)(name)
    if name in SUBPACKAGES:
        return importlib.import_module(f"tflottery.{name}")
    raise AttributeError(f"module 'tflottery' has no attribute {name!r}")


if USER_TF_LOG_LEVEL is None and os.environ.get("TFLOTTERY_QUIET", "1") != "0":
    from tflottery.core.quiet import quiet_tensorflow_startup

    quiet_tensorflow_startup()
