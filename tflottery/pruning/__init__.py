"""Pruning: which weights survive (masks), how tfmot enforces it (wrap), and our schedule."""
