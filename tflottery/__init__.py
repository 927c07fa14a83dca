"""tflottery: lottery tickets for Keras — IMP with rewinding on tfmot, tickets, transfer, TFLite.

tfmot works only with Keras 2, so `TF_USE_LEGACY_KERAS=1` is set here, before TensorFlow
loads; the package uses `tf_keras` throughout. The public API is imported lazily so that
`import tflottery` stays cheap.
"""
import os

USER_TF_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")  # the user's own setting wins over ours
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.2.0"

_PUBLIC = {
    "find_ticket": "tflottery.engine.imp",
    "load_ticket": "tflottery.tickets",
    "read_ticket": "tflottery.tickets",
    "export_ticket": "tflottery.tickets",
    "apply_ticket": "tflottery.tickets",
    "transfer": "tflottery.engine.transfer",
    "convert": "tflottery.deploy",
    "RunConfig": "tflottery.config",
    "derive_seed": "tflottery.engine.seeds",
    "TflotteryError": "tflottery.errors",
    "custom_objects": "tflottery.pruning.wrap",
    "IMPSchedule": "tflottery.pruning.schedule",
    "prune_imp": "tflottery.pruning.schedule",
    "Rewind": "tflottery.pruning.rewind",
    "EarlyBird": "tflottery.pruning.early_bird",
    "instability": "tflottery.analysis.instability",
    "compare": "tflottery.analysis.compare",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'tflottery' has no attribute {name!r}")
