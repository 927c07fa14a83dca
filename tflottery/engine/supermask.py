"""Renamed in 0.4: `tflottery.engine.edge_popup` (untrained masks and edge-popup). This stub goes in 0.5."""
from tflottery.core.deprecation import moved_module
from tflottery.engine.edge_popup import *  # noqa: F401,F403

moved_module(__name__, "tflottery.engine.edge_popup")
