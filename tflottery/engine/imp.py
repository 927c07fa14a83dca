"""Renamed in 0.4: `tflottery.engine.loop` (the one level loop). This stub goes in 0.5."""
from tflottery.core.deprecation import moved_module
from tflottery.engine.loop import *  # noqa: F401,F403

moved_module(__name__, "tflottery.engine.loop")
