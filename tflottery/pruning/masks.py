"""Masks as numpy: magnitude pruning (layerwise or global) and random pruning.

Masks are dicts `{"<layer>/kernel": bool array}`. Pruning removes exactly
`round(rate * survivors)` weights (ties broken by position, so results are reproducible)
and only ever removes survivors: each level's mask lies inside the previous one.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from tflottery.config import ConfigError, PruningConfig


def layerwise(weights: dict, masks: dict, rates: dict) -> dict:
    """Each layer loses `rates[name]` of its surviving weights, smallest magnitude first."""
    return {name: _drop_smallest(weights[name], mask, int(round(rates[name] * mask.sum())))
            for name, mask in masks.items()}


def global_(weights: dict, masks: dict, rate: float, exempt: Iterable[str] = ()) -> dict:
    """One magnitude threshold over all survivors of all layers (tfmot has none, so it is computed here)."""
    exempt = set(exempt)
    names = [n for n in masks if n not in exempt]
    scores = np.concatenate([np.abs(weights[n][masks[n]]).ravel() for n in names])
    n_prune = int(round(rate * scores.size))
    out = dict(masks)
    if n_prune == 0:
        return out
    order = np.argsort(scores, kind="stable")
    drop = np.zeros(scores.size, bool)
    drop[order[:n_prune]] = True
    offset = 0
    for n in names:
        alive = masks[n].sum()
        new = masks[n].copy()
        new[masks[n]] = ~drop[offset:offset + alive]
        out[n], offset = new, offset + alive
    return out


def random_like(masks: dict, seed: int) -> dict:
    """Random masks with exactly the same number of survivors per layer (Frankle & Carbin's baseline)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, mask in sorted(masks.items()):
        flat = np.zeros(mask.size, bool)
        flat[rng.choice(mask.size, int(mask.sum()), replace=False)] = True
        out[name] = flat.reshape(mask.shape)
    return out


def prune(weights: dict, masks: dict, rates: dict, config: PruningConfig) -> dict:
    """The next level's masks from trained `weights`, by the configured strategy."""
    if config.strategy == "global":
        return global_(weights, masks, config.dense_rate, exempt=[n for n, r in rates.items() if r == 0])
    return layerwise(weights, masks, rates)


def _drop_smallest(w: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    if n <= 0:
        return mask.copy()
    alive = np.flatnonzero(mask)
    order = np.argsort(np.abs(w.ravel()[alive]), kind="stable")
    new = mask.ravel().copy()
    new[alive[order[:n]]] = False
    return new.reshape(mask.shape)


def remaining(masks: dict) -> dict:
    """Fraction of weights remaining, per layer and overall (key "total")."""
    out = {n: float(m.mean()) for n, m in masks.items()}
    out["total"] = float(sum(m.sum() for m in masks.values()) / max(1, sum(m.size for m in masks.values())))
    return out


def layer_rates(kinds: dict, config: PruningConfig) -> dict:
    """Per-weight pruning rate from the config: kind rates, the output at half rate, overrides, exemptions.

    `kinds` maps "<layer>/kernel" to "dense" or "conv" in model order; the last is the output layer.
    """
    layer_names = {k.split("/")[0]: k for k in kinds}
    for name in list(config.layer_rates) + list(config.unpruned):
        if name not in layer_names:
            raise ConfigError(f"pruning: no prunable layer named {name!r}; prunable layers: {', '.join(layer_names)}.")
    output = list(kinds)[-1]
    rates = {k: config.rate_for(kind, k == output) for k, kind in kinds.items()}
    for name, rate in config.layer_rates.items():
        rates[layer_names[name]] = float(rate)
    for name in config.unpruned:
        rates[layer_names[name]] = 0.0
    return rates


def plan(sizes: dict, rates: dict, levels: int, config: PruningConfig) -> list[dict]:
    """Planned surviving weights per layer for levels 0..levels, without training.

    Global pruning decides per-layer counts from trained magnitudes, so only its total is
    known in advance (per-layer entries are None).
    """
    total = sum(sizes.values())
    counts, rows = dict(sizes), [dict(sizes, total=total)]
    exempt = sum(n for k, n in sizes.items() if rates[k] == 0)
    alive = total - exempt
    for _ in range(levels):
        if config.strategy == "global":
            alive -= int(round(config.dense_rate * alive))
            rows.append({**{k: (sizes[k] if rates[k] == 0 else None) for k in sizes}, "total": alive + exempt})
        else:
            counts = {k: n - int(round(rates[k] * n)) for k, n in counts.items()}
            rows.append(dict(counts, total=sum(counts.values())))
    for row in rows:
        row["remaining"] = row["total"] / total
    return rows
