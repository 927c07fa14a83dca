"""Whole channels: a Dense layer's neurons and a convolution's filters (output channels), the unit that shrinks.

A channel is a column of its kernel (the last axis). Its score is the L1 norm of its surviving
weights (Li et al. 2017, "Pruning Filters for Efficient ConvNets"; `norm: l2` for the L2 norm),
and a level keeps each layer's plan count of channels. When the run knows the model's channel
graph (`tflottery.models.channels`: the engine passes it), a removed channel's every reader
follows: its consumers' input rows are masked too (a Dense kernel's rows, a convolution's input
slice, through a Flatten every spatial position), so the subnetwork is exactly a smaller dense
network, which `tflottery.models.channels.shrink` builds. A layer's plan counts are its own
channels times its full fan-in; the rows that follow an earlier layer's removed channels come
on top, so the weights that remain (counted from the masks, as everywhere) are fewer than the
plan's. The output layer (its channels are the classes), layers whose channels cannot be
followed (an `Add`, a `Concatenate`: not handled yet) and targets that are not Dense or
convolution kernels are pruned weight by weight; the plan says which. Layer by layer only:
channels of different fan-in are not one unit across layers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from tflottery.config import setting
from tflottery.core.errors import ConfigError
from tflottery.core.names import layer_of
from tflottery.pruning.structures.base import Structure


class Channels(Structure):
    kind = "channels"
    example = {"kind": "channels"}
    keys = {"norm"}
    description = "whole output channels (Dense neurons, conv filters), their readers' inputs following"
    strategies: ClassVar[tuple] = ("layerwise", "early_bird")

    @dataclass
    class Settings:
        norm: str = setting("l1", "a channel's score: l1 (Li et al. 2017) or l2, of its surviving weights")

    @classmethod
    def check_settings(cls, settings) -> None:
        if settings.norm not in ("l1", "l2"):
            raise ConfigError(f"pruning.structure norm={settings.norm!r}: l1 or l2.")

    def __init__(self, settings, kinds: dict, shapes: dict, pruned: list):
        super().__init__(settings, kinds, shapes, pruned)
        self.bind_graph(None)

    def bind_graph(self, graph: Optional[dict]) -> None:
        """`graph`: {producer kernel: [[consumer kernel, spatial, input axis], ...]} of the model, or None (then
        every Dense and convolution kernel but the output's is pruned in channels, and no reader follows)."""
        self.graph = graph
        output = list(self.kinds)[-1]
        candidates = [k for k in self.pruned if self.kinds[k] in ("dense", "conv") and k != output
                      and len(self.shapes[k]) >= 2]
        self.channel_layers = [k for k in candidates if graph is None or k in graph]
        self.loose = [k for k in self.pruned if k not in self.channel_layers]

    @classmethod
    def deploy_note(cls, settings) -> "tuple[str, str] | None":
        return ("in whole channels. ", "A channel ticket shrinks to a smaller dense network (`tflottery shrink`), "
                                       "fast on every target with no sparse kernel.")

    def identify(self, identity: dict, strategy: str) -> dict:
        return {**identity, "structure": "channels", "norm": self.settings.norm,
                "weight_by_weight": sorted(self.loose)}

    def unit(self, k: str) -> int:
        return int(np.prod(self.shapes[k][:-1])) if k in self.channel_layers else 1

    def units(self, k, weights, mask):
        if k not in self.channel_layers:
            return weights, mask
        columns = self.shapes[k][-1]
        alive = mask.reshape(-1, columns)
        values = np.abs(weights.reshape(-1, columns)) * alive
        scores = values.sum(axis=0) if self.settings.norm == "l1" else np.sqrt((values ** 2).sum(axis=0))
        return scores, alive.any(axis=0)

    def expand(self, k, unit_mask):
        if k not in self.channel_layers:
            return unit_mask
        return np.broadcast_to(unit_mask, self.shapes[k]).copy()

    def holds(self, k, mask):
        if k not in self.channel_layers:
            return True
        grid = mask.reshape(-1, self.shapes[k][-1])
        return bool(np.array_equal(grid, np.outer(grid.any(axis=1), grid.any(axis=0))))

    def follow(self, masks: dict) -> dict:
        """`masks` with the input rows of every removed channel masked in its consumers (the graph's)."""
        if not self.graph:
            return masks
        from tflottery.models.channels import Consumer  # the rows a channel occupies (loads tf_keras: only here)

        out = dict(masks)
        for producer, consumers in self.graph.items():
            if producer not in out:
                continue
            channels = self.shapes[producer][-1]
            dead = np.flatnonzero(~out[producer].reshape(-1, channels).any(axis=0))
            if not len(dead):
                continue
            for consumer, spatial, axis in consumers:
                rows = Consumer(consumer, spatial).rows(channels, dead)
                mask = np.array(out[consumer], copy=True)
                index = [slice(None)] * mask.ndim
                index[axis] = rows
                mask[tuple(index)] = False
                out[consumer] = mask
        return out

    def shuffled(self, masks: dict, seed: int) -> dict:
        """As many channels per layer as `masks` keeps, chosen at random (the layer's loose targets: as many weights),
        their readers following."""
        from tflottery.pruning import masks as mask_lib

        rng = np.random.default_rng(seed)
        out = mask_lib.random_like({k: m for k, m in masks.items() if k not in self.channel_layers}, seed)
        for k in self.channel_layers:
            if k not in masks:
                continue
            columns = self.shapes[k][-1]
            keep = np.zeros(columns, bool)
            keep[rng.permutation(columns)[:int(masks[k].reshape(-1, columns).any(axis=0).sum())]] = True
            out[k] = self.expand(k, keep)
        return self.follow({k: out[k] for k in masks})

    def note(self) -> str:
        text = f"whole channels ({self.settings.norm} scores) in {', '.join(layer_of(k) for k in self.channel_layers) or 'no layer'}"
        if self.graph is not None:
            text += ("; the readers of removed channels follow (their input rows go too, so fewer weights remain than "
                     "these counts of each layer's own channels)")
        return text + (f"; weight by weight in {', '.join(layer_of(k) for k in self.loose)}" if self.loose else "")
