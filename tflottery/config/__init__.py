"""Configuration: what defines a run (`spec`), how far it goes (`plan`), and the flags over both.

Plain data: this package imports no TensorFlow and knows no registry, so the CLI validates
every flag before TensorFlow loads; the engine's resolver checks the kinds it names.
"""
from tflottery.config.fields import build, hashed_fields, setting, unhashed
from tflottery.config.flags import apply_flag, config_from_flags, describe_flags, field_names, merge_flags
from tflottery.config.plan import PlanConfig
from tflottery.config.spec import (SECTIONS, TOP_LEVEL, DataConfig, ModelConfig, PruningConfig, RunConfig,
                                   TrainingConfig)

__all__ = ["SECTIONS", "TOP_LEVEL", "DataConfig", "ModelConfig", "PlanConfig", "PruningConfig", "RunConfig",
           "TrainingConfig", "apply_flag", "build", "config_from_flags", "describe_flags", "field_names",
           "hashed_fields", "merge_flags", "setting", "unhashed"]
