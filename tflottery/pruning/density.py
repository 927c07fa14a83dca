"""Per-layer densities for sparse training from scratch (Evci et al. 2020, "Rigging the Lottery"), as counts.

* `ticket`: the IMP ticket's own per-layer counts at the level (what the run's strategy chose).
* `uniform`: every layer at the same density; the first layer dense as Evci et al. keep it, where it fits
  the budget (it does in a conv net, whose first layer is small; a LeNet-300-100's first layer holds 88% of
  the weights, so there every layer shares one density), the other layers then at the one density that
  gives the level's total.
* `erk`: Erdős–Rényi-Kernel: layer l's density is eps * (sum of its kernel's dimensions) / (their product),
  (n_in + n_out + k_h + k_w) / (n_in n_out k_h k_w) for a convolution and (n_in + n_out) / (n_in n_out) for a
  dense layer, eps chosen so the counts sum to the level's total; a layer whose density would exceed 1 is
  kept dense and eps solved again without it, the largest first (RigL's `get_sparsities_erdos_renyi`).

Counts are rounded to whole weights; the total is the level's up to that rounding.
"""
from __future__ import annotations

import math

from tflottery.core.errors import ConfigError

DENSITIES = ("ticket", "uniform", "erk")


def layer_counts(kind: str, shapes: dict, total: int) -> dict:
    """{layer: survivors} of `kind` over the pruned kernels `shapes` (in the model's order), `total` in all."""
    if kind not in ("uniform", "erk"):
        raise ConfigError(f"density={kind!r}: use one of {', '.join(DENSITIES)}.")
    sizes = {k: math.prod(s) for k, s in shapes.items()}
    if not 0 < total <= sum(sizes.values()):
        raise ConfigError(f"density {kind}: {total} survivors do not fit {sum(sizes.values())} weights.")
    if kind == "uniform":
        first = next(iter(sizes))
        dense = {first} if sizes[first] < total else set()
        density = (total - sum(sizes[k] for k in dense)) / sum(n for k, n in sizes.items() if k not in dense)
        return {k: n if k in dense else int(round(density * n)) for k, n in sizes.items()}
    raw = {k: sum(s) / math.prod(s) for k, s in shapes.items()}
    dense: set = set()
    while True:
        left = total - sum(sizes[k] for k in dense)
        eps = left / sum(raw[k] * sizes[k] for k in sizes if k not in dense)
        over = [k for k in sizes if k not in dense and eps * raw[k] > 1]
        if not over:
            return {k: sizes[k] if k in dense else int(round(eps * raw[k] * sizes[k])) for k in sizes}
        dense.add(max(over, key=lambda k: raw[k]))
