"""Configuration: what defines a run (`spec`), how far it goes (`plan`), and the flags over both.

This package must not import TensorFlow: the CLI validates every flag before TensorFlow loads.
"""
from tflottery.config.fields import build, hashed_fields, unhashed
from tflottery.config.flags import apply_flag, config_from_flags, describe_flags, flag_names
from tflottery.config.plan import PlanConfig
from tflottery.config.spec import (SECTIONS, TOP_LEVEL, DataConfig, ModelConfig, PruningConfig, RunConfig,
                                   TrainingConfig)
from tflottery.config.steps import Step
from tflottery.errors import ConfigError, TicketError, TflotteryError

FORMAT_VERSION = 2  # tickets; see tflottery.tickets

__all__ = ["SECTIONS", "TOP_LEVEL", "ConfigError", "DataConfig", "FORMAT_VERSION", "ModelConfig", "PlanConfig",
           "PruningConfig", "RunConfig", "Step", "TicketError", "TflotteryError", "TrainingConfig", "apply_flag",
           "build", "config_from_flags", "describe_flags", "flag_names", "hashed_fields", "unhashed"]
