"""Pruning: which weights survive (masks, strategies), how tfmot enforces it (wrap), and our schedule.

`masks` and `strategies` are numpy only; `wrap` and `schedule` import TensorFlow.
"""
