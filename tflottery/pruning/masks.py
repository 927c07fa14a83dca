"""Masks as numpy: magnitude pruning to exact counts, and random masks.

Masks are dicts `{"<layer>/kernel": bool array}`. Pruning removes exactly the number of
survivors asked for, smallest magnitude first (ties broken by position, so results are
reproducible), and only ever removes survivors: each level's mask lies inside the previous one.
"""
from __future__ import annotations

import numpy as np


def drop_smallest(weights: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """`mask` with its `n` surviving weights of smallest magnitude removed."""
    if n <= 0:
        return mask.copy()
    alive = np.flatnonzero(mask)
    order = np.argsort(np.abs(weights.ravel()[alive]), kind="stable")
    new = mask.ravel().copy()
    new[alive[order[:n]]] = False
    return new.reshape(mask.shape)


def drop_smallest_global(weights: dict, masks: dict, names: list, n: int) -> dict:
    """Remove the `n` smallest surviving weights over all layers in `names` at once: one threshold."""
    out = {k: v.copy() for k, v in masks.items()}
    if n <= 0:
        return out
    scores = np.concatenate([np.abs(weights[k][masks[k]]).ravel() for k in names])
    drop = np.zeros(scores.size, bool)
    drop[np.argsort(scores, kind="stable")[:n]] = True
    offset = 0
    for k in names:
        alive = int(masks[k].sum())
        out[k][masks[k]] = ~drop[offset:offset + alive]
        offset += alive
    return out


def random_like(masks: dict, seed: int) -> dict:
    """Random masks with exactly the same number of survivors per layer (Frankle & Carbin's baseline)."""
    return random_counts({k: m.shape for k, m in masks.items()}, {k: int(m.sum()) for k, m in masks.items()}, seed)


def ones_like(weights: dict, names) -> dict:
    return {k: np.ones(np.shape(weights[k]), bool) for k in names}


def remaining(masks: dict) -> dict:
    """Fraction of weights remaining, per layer and overall (key "total")."""
    out = {n: float(m.mean()) for n, m in masks.items()}
    out["total"] = float(sum(m.sum() for m in masks.values()) / max(1, sum(m.size for m in masks.values())))
    return out


def of_all(remaining: float, prunable: int, dense: int) -> float:
    """A fraction `remaining` of `prunable` weights as a fraction of every trainable weight, `dense` of them outside
    the pruned variables (biases, norms, layers left dense)."""
    return (remaining * prunable + dense) / max(1, prunable + dense)


def weight_counts(masks: dict, dense: int) -> dict:
    """The weights a ticket's description counts: in the pruned variables, kept of them, trainable outside them,
    and the fraction of every trainable weight kept."""
    pruned, kept = int(sum(m.size for m in masks.values())), int(sum(int(m.sum()) for m in masks.values()))
    return {"pruned_variables": pruned, "kept": kept, "dense": int(dense),
            "remaining_of_all": of_all(kept / max(1, pruned), pruned, dense)}


def counts(masks: dict) -> dict:
    return {k: int(m.sum()) for k, m in masks.items()}


def random_counts(shapes: dict, counts: dict, seed: int) -> dict:
    """Random masks of `shapes` with exactly `counts[layer]` survivors each."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(shapes):
        size = int(np.prod(shapes[name]))
        flat = np.zeros(size, bool)
        flat[rng.choice(size, int(counts[name]), replace=False)] = True
        out[name] = flat.reshape(shapes[name])
    return out
