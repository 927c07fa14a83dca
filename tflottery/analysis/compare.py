"""Comparing tickets: how much their masks overlap, against chance, and how their kept weights moved.

Sources are ticket directories or run levels ("RUN@L", "RUN@L:branch", "RUN@L:branch#replicate").
For every pair: the Jaccard overlap of the masks (kept in both / kept in either), per layer and in
total, beside the overlap two independent random masks of the same sparsities would have on
average (per layer p*q / (p + q - p*q); in total, the sum of expected intersections over the
sum of expected unions). For every source: the fraction of kept weights whose sign differs
between the weights it trains from and its trained weights.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery.core.errors import ConfigError

_LEVEL = re.compile(r"^(?P<run>.+)@(?P<level>\d+)(?::(?P<branch>[\w.-]+))?(?:#(?P<replicate>\d+))?$")


@dataclass
class Source:
    name: str
    masks: dict
    start: dict
    final: dict


@dataclass
class Comparison:
    sources: list
    pairs: list = field(default_factory=list)  # {"a", "b", "jaccard", "chance", "layers": {k: (jaccard, chance)}}
    sign_flips: dict = field(default_factory=dict)  # name -> fraction of kept weights whose sign flipped
    figure: Optional[Path] = None
    labels: Optional[list] = None  # short names for the figure

    def matrix(self) -> np.ndarray:
        n = len(self.sources)
        m = np.eye(n)
        for p in self.pairs:
            i, j = self.sources.index(p["a"]), self.sources.index(p["b"])
            m[i, j] = m[j, i] = p["jaccard"]
        return m


def load_source(text: "str | Path") -> Source:
    """A ticket directory, or a run level written RUN@L[:branch][#replicate]."""
    text = str(text)
    match = _LEVEL.match(text)
    if match and not (Path(text) / "ticket.json").exists():
        from tflottery.engine.store import RunStore

        store = RunStore.open(match["run"])
        replicate = int(match["replicate"] or 0)
        if replicate not in store.replicates():
            raise ConfigError(f"{store.path} has no replicate {replicate}; replicates: {store.replicates()}.")
        record = store.replicate(replicate).load_level(int(match["level"]), match["branch"] or "ticket")
        return Source(text, record.masks, record.start, record.final)
    from tflottery.tickets import read_ticket

    ticket = read_ticket(text)
    return Source(text, ticket.masks, ticket.rewind, ticket.weights)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 1.0


def chance(p: float, q: float) -> float:
    """Expected Jaccard overlap of two independent random masks keeping fractions p and q."""
    union = p + q - p * q
    return float(p * q / union) if union else 1.0


def compare_masks(a: dict, b: dict) -> dict:
    layers, inter, union, inter_chance, union_chance = {}, 0, 0, 0.0, 0.0
    for k in a:
        p, q, n = float(a[k].mean()), float(b[k].mean()), a[k].size
        layers[k] = (jaccard(a[k], b[k]), chance(p, q))
        inter += np.count_nonzero(a[k] & b[k])
        union += np.count_nonzero(a[k] | b[k])
        inter_chance += n * p * q
        union_chance += n * (p + q - p * q)
    return {"jaccard": inter / union if union else 1.0, "chance": inter_chance / union_chance if union_chance else 1.0,
            "layers": layers}


def sign_flips(source: Source) -> float:
    """The fraction of kept weights (non-zero at the start) whose sign differs after training."""
    flipped = kept = 0
    for k, mask in source.masks.items():
        start, final = source.start[k][mask], source.final[k][mask]
        live = start != 0
        kept += int(live.sum())
        flipped += int(np.count_nonzero(np.sign(start[live]) != np.sign(final[live])))
    return flipped / kept if kept else 0.0


def compare(*sources: "str | Path", out: "str | Path | None" = None, names: Optional[list] = None) -> Comparison:
    """Compare tickets or run levels pairwise (see the module's doc); with `out`, draw a heat map there,
    its rows and columns labelled by `names` (default: the sources)."""
    if len(sources) < 2:
        raise ConfigError("compare needs at least two tickets or run levels (RUN@L), e.g. "
                          "tflottery compare saved_tickets/a saved_tickets/b.")
    loaded = [load_source(s) for s in sources]
    seen: dict = {}
    for source in loaded:  # the same source twice stays two columns
        seen[source.name] = seen.get(source.name, 0) + 1
        if seen[source.name] > 1:
            source.name = f"{source.name} ({seen[source.name]})"
    first = loaded[0]
    for other in loaded[1:]:
        shapes = {k: v.shape for k, v in first.masks.items()}
        theirs = {k: v.shape for k, v in other.masks.items()}
        if shapes != theirs:
            raise ConfigError(f"{other.name} and {first.name} prune different architectures (masks "
                              f"{sorted(theirs.items())[:3]} against {sorted(shapes.items())[:3]}): only tickets of "
                              "one architecture can be compared.")
    if names is not None and (not isinstance(names, (list, tuple)) or len(names) != len(loaded)):
        raise ConfigError(f"names={names!r}: give one short name per source ({len(loaded)}).")
    result = Comparison([s.name for s in loaded], labels=list(names) if names else None)
    for i in range(len(loaded)):
        for j in range(i + 1, len(loaded)):
            result.pairs.append({"a": loaded[i].name, "b": loaded[j].name,
                                 **compare_masks(loaded[i].masks, loaded[j].masks)})
    result.sign_flips = {s.name: sign_flips(s) for s in loaded}
    if out is not None:
        from tflottery.plots import overlap_heatmap

        result.figure = overlap_heatmap(result, out)
    return result
