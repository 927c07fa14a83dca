"""Deployment: tickets to TFLite files, each proven right in the LiteRT interpreter.

`convert` (the public function; validation, then a subprocess) · `worker` (the conversion,
run as `python -m tflottery.deploy.worker`) · `converter` (the TFLite converter per mode) ·
`verify` (LiteRT: loading, accuracy, agreement, latency) · `finetune` (QAT and block sparsity).
"""
from tflottery.deploy.convert import MODES, convert

__all__ = ["MODES", "convert"]
