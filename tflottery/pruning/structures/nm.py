"""N:M sparsity (2:4 for sparse tensor cores): every group of m consecutive weights along a kernel's
input axis keeps at most n, at every pruned level.

The groups are tfmot's `sparsity_m_by_n` groups: consecutive inputs of one output, i.e. rows
of a Dense kernel [in, out] and, for a convolution [h, w, in, out], the input channels at one
(h, w, out) position; a last group shorter than m (inputs not a multiple of m) keeps at most n
too. A level whose planned fraction is above n/m keeps exactly the n largest of every group
(the plan shows those levels capped); below n/m the strategy prunes further by magnitude inside
the N:M mask, which stays N:M since masks only lose weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflottery.config import setting
from tflottery.core.errors import ConfigError
from tflottery.pruning.structures.base import Structure


class NByM(Structure):
    kind = "nm"
    example = {"n": 2, "m": 4}  # a pruning.structure that chooses it (its contract tests use it)
    keys = {"n", "m"}
    description = "at most n of every m consecutive inputs of each output (2:4 for sparse tensor cores)"

    @dataclass
    class Settings:
        n: int = setting(2, "weights kept per group")
        m: int = setting(4, "consecutive inputs per group")

    @classmethod
    def check_settings(cls, settings) -> None:
        if not 1 <= settings.n < settings.m or settings.m > 64:
            raise ConfigError(f"pruning.structure n={settings.n}, m={settings.m}: need 1 <= n < m <= 64, "
                              "e.g. {\"n\": 2, \"m\": 4}.")

    @classmethod
    def deploy_note(cls, settings) -> "tuple[str, str] | None":
        return "", (f"the ticket is {settings.n}:{settings.m} sparse, and LiteRT has no N:M kernel: its layers run as "
                    "their mode's dense or unstructured-sparse kernels (N:M speed needs sparse tensor cores: TensorRT "
                    "or cuSPARSELt)")

    def identify(self, identity: dict, strategy: str) -> dict:
        return {**identity, "structure": {"kind": self.kind, "n": self.settings.n, "m": self.settings.m}}

    def _groups(self, array: np.ndarray) -> np.ndarray:
        """[groups, m] view along the input axis (padded with -1 scores past the last input)."""
        m = self.settings.m
        n_in = array.shape[-2]
        moved = np.moveaxis(array, -2, -1).reshape(-1, n_in)  # [positions x out, in]
        pad = (-n_in) % m
        padded = np.pad(moved.astype(np.float64), ((0, 0), (0, pad)), constant_values=-1.0)
        return padded.reshape(-1, m)

    def _ungroup(self, groups: np.ndarray, shape: tuple) -> np.ndarray:
        n_in = shape[-2]
        rows = groups.reshape(-1, n_in + (-n_in) % self.settings.m)[:, :n_in]
        moved_shape = (*shape[:-2], shape[-1], n_in)
        return np.moveaxis(rows.reshape(moved_shape), -1, -2)

    def cap(self, k: str) -> int:
        shape = self.shapes[k]
        n_in, m, n = shape[-2], self.settings.m, self.settings.n
        per_row = (n_in // m) * n + min(n, n_in % m)
        return int(per_row * np.prod(shape) // n_in)

    def constrain(self, k, weights, mask):
        scores = np.where(mask, np.abs(weights), -1.0)  # pruned weights never return
        groups = self._groups(scores)
        order = np.argsort(-groups, axis=1, kind="stable")
        keep = np.zeros(groups.shape, bool)
        np.put_along_axis(keep, order[:, :self.settings.n], True, axis=1)
        return self._ungroup(keep & (groups >= 0), mask.shape).astype(bool) & mask

    def holds(self, k, mask):
        return bool((self._groups(mask.astype(np.float64)) > 0).sum(axis=1).max(initial=0) <= self.settings.n)

    def note(self) -> str:
        n, m = self.settings.n, self.settings.m
        return (f"{n}:{m} structure: at most {n} of every {m} consecutive inputs of each output; levels planned "
                f"above {100 * n / m:.0f}% keep exactly {n}:{m}")
