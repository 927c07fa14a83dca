"""Structure as its own axis: blocks and N:M hold at every level under layerwise and global IMP."""
import numpy as np
import pytest

from tflottery.config import PruningConfig
from tflottery.core.errors import ConfigError
from tflottery.pruning import masks as M
from tflottery.pruning.resolve import bind
from tflottery.pruning.strategies import total

SHAPES = {"fc1/kernel": (64, 32), "fc2/kernel": (32, 16), "output/kernel": (16, 10)}


def _weights(seed, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s) for k, s in shapes.items()}


def _levels(strategy, levels, shapes=SHAPES):
    """Masks of `levels` iterative levels, each pruned from fresh "trained" weights."""
    masks, out = M.ones_like(_weights(0, shapes), shapes), []
    plan = strategy.plan(levels)
    for level in range(1, levels + 1):
        masks = strategy.prune(_weights(level, shapes), masks, plan[level])
        out.append((plan[level], masks))
    return out


def _at_most_n_of_m(mask, n, m):
    """Every group of m consecutive inputs (axis -2) of each output keeps at most n."""
    rows = np.moveaxis(mask, -2, -1).reshape(-1, mask.shape[-2])
    pad = (-rows.shape[1]) % m
    groups = np.pad(rows, ((0, 0), (0, pad))).reshape(-1, m)
    return groups.sum(axis=1).max() <= n


@pytest.mark.parametrize("strategy", ["layerwise", "global"])
def test_two_of_four_holds_at_every_level_and_the_plan_is_met(strategy):
    nm = bind(PruningConfig.from_dict({"strategy": strategy, "structure": {"n": 2, "m": 4}}),
              {k: "dense" for k in SHAPES}, SHAPES)
    plain = bind(PruningConfig.from_dict({"strategy": strategy}), {k: "dense" for k in SHAPES}, SHAPES)
    capped = 0
    for (row, masks), plain_row in zip(_levels(nm, 8), plain.plan(8)[1:]):
        assert all(_at_most_n_of_m(masks[k], 2, 4) for k in masks)
        assert sum(int(m.sum()) for m in masks.values()) == total(row)  # exactly the plan's count
        for key, planned in plain_row.items():  # above 2:4's density exactly 2 of 4; below it the plain plan
            half = (nm.sizes[key] if key in nm.sizes else sum(nm.sizes.values())) // 2
            assert row[key] == min(planned, half)
            capped += planned > half
    assert capped  # the first levels are capped
    assert "2:4 structure" in __import__("tflottery.pruning.strategies", fromlist=["describe"]).describe(
        nm, nm.plan(3))


def test_two_of_four_keeps_the_largest_two_and_a_short_last_group_too():
    nm = bind(PruningConfig.from_dict({"structure": {"n": 2, "m": 4}, "output_rate": 0.0}), {"x/kernel": "dense"},
              {"x/kernel": (6, 1)})
    w = {"x/kernel": np.array([[0.1], [-0.9], [0.5], [0.2], [-0.3], [0.8]])}
    mask = nm.prune(w, {"x/kernel": np.ones((6, 1), bool)}, nm.capped({"x/kernel": 6}))
    assert mask["x/kernel"][:, 0].tolist() == [False, True, True, False, True, True]  # 2 of 4, then 2 of 2


def test_two_of_four_on_a_convolution_groups_input_channels():
    shapes = {"c/kernel": (3, 3, 8, 4), "out/kernel": (32, 10)}
    nm = bind(PruningConfig.from_dict({"structure": {"n": 2, "m": 4}}), {"c/kernel": "conv", "out/kernel": "dense"},
              shapes)
    for _, masks in _levels(nm, 3, shapes):
        assert _at_most_n_of_m(masks["c/kernel"], 2, 4)
        assert nm.structure.holds("c/kernel", masks["c/kernel"])
    assert not nm.structure.holds("c/kernel", np.ones((3, 3, 8, 4), bool))


@pytest.mark.parametrize("strategy", ["layerwise", "global"])
def test_blocks_are_whole_at_every_level(strategy):
    blocks = bind(PruningConfig.from_dict({"strategy": strategy, "structure": {"block": [1, 4]}}),
                  {k: "dense" for k in SHAPES}, SHAPES)
    for row, masks in _levels(blocks, 6):
        assert sum(int(m.sum()) for m in masks.values()) == total(row)
        assert all(blocks.structure.holds(k, m) for k, m in masks.items())
        groups = masks["fc1/kernel"].reshape(16, 4, 32)  # 4 consecutive inputs of one output
        assert np.all(groups.all(axis=1) | ~groups.any(axis=1))


def test_block_identity_keeps_the_0_2_run_names():
    layerwise = bind(PruningConfig.from_dict({"structure": {"block": [1, 4], "unstructured": ["output"]}}),
                     {k: "dense" for k in SHAPES}, SHAPES)
    assert layerwise.run_identity() == {"strategy": "block", "rates": layerwise.rates, "block": [4, 1],
                                        "unstructured": ["output/kernel"]}
    glob = bind(PruningConfig.from_dict({"strategy": "global", "rate": 0.3, "structure": {"block": [1, 4]}}),
                {k: "dense" for k in SHAPES}, {k: s for k, s in SHAPES.items()} | {"output/kernel": (16, 12)})
    assert glob.run_identity() == {"strategy": "block_global", "rate": 0.3, "exempt": [], "block": [4, 1]}


def test_structures_refuse_layers_they_cannot_cut():
    with pytest.raises(ConfigError, match="does not divide layer fc1"):
        bind(PruningConfig.from_dict({"structure": {"block": [1, 5]}}), {k: "dense" for k in SHAPES}, SHAPES)
    with pytest.raises(ConfigError, match="global ranks one kind of unit"):
        bind(PruningConfig.from_dict({"strategy": "global", "structure": {"block": [1, 4], "unstructured": ["fc2"]}}),
             {k: "dense" for k in SHAPES}, SHAPES)
