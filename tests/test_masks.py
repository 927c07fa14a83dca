"""Masks and pruning strategies: exact counts, nesting, one global threshold, plans known in advance."""
import numpy as np
import pytest

from tflottery.config import ConfigError, PruningConfig
from tflottery.pruning import masks as M
from tflottery.pruning.strategies import GLOBAL, build_strategy

LENET = {"fc1/kernel": 784 * 300, "fc2/kernel": 300 * 100, "output/kernel": 100 * 10}
KINDS = {k: "dense" for k in LENET}


def _strategy(sizes=LENET, kinds=None, **config):
    return build_strategy(PruningConfig(**config), kinds or {k: "dense" for k in sizes}, sizes)


def test_layerwise_plan_matches_frankle_and_carbin():
    strategy = _strategy(dense_rate=0.2)
    assert strategy.rates == {"fc1/kernel": 0.2, "fc2/kernel": 0.2, "output/kernel": 0.1}
    rows = strategy.plan(16)
    total = sum(LENET.values())
    paper = {3: 51.3, 7: 21.1, 9: 13.5, 12: 7.0, 15: 3.6, 16: 2.9}
    for level, percent in paper.items():
        assert round(100 * sum(rows[level].values()) / total, 1) == percent
    assert strategy.levels_for(0.036) == 15
    assert strategy.identity() == _strategy(dense_rate=0.2, conv_rate=0.1).identity()  # defaults hash alike


def _random_weights(seed=0):
    rng = np.random.default_rng(seed)
    return {"a/kernel": rng.normal(size=(40, 30)), "b/kernel": rng.normal(size=(30, 10))}


def test_real_masks_follow_the_plan_and_are_nested():
    weights = _random_weights()
    sizes = {k: v.size for k, v in weights.items()}
    strategy = _strategy(sizes, layer_rates={"a": 0.2, "b": 0.1})
    plan = strategy.plan(8)
    masks = M.ones_like(weights, weights)
    for level in range(1, 9):
        new = strategy.prune(weights, masks, plan[level])
        assert all(np.all(new[k] <= masks[k]) for k in masks)  # inside the previous mask
        assert M.counts(new) == plan[level]
        masks = new
        weights = {k: v * 1.01 for k, v in _random_weights(level).items()}  # "trained" weights change


def test_layerwise_removes_the_smallest_survivors():
    w = {"x/kernel": np.array([[0.5, -0.1, 0.3, -2.0, 0.05]])}
    mask = {"x/kernel": np.array([[True, True, True, True, False]])}
    strategy = _strategy({"x/kernel": 5}, output_rate=0.5)  # one layer: the output layer
    assert strategy.prune(w, mask, {"x/kernel": 2})["x/kernel"].tolist() == [[True, False, False, True, False]]


def test_global_uses_one_threshold_and_gives_point_eight_to_the_L():
    weights = _random_weights()
    weights["b/kernel"] *= 0.1  # a small-magnitude layer loses far more under a global threshold
    strategy = _strategy({k: v.size for k, v in weights.items()}, strategy="global")
    plan = strategy.plan(5)
    masks = M.ones_like(weights, weights)
    total = sum(m.size for m in masks.values())
    for level in range(1, 6):
        masks = strategy.prune(weights, masks, plan[level])
        assert sum(M.counts(masks).values()) == plan[level][GLOBAL]
        assert abs(sum(m.sum() for m in masks.values()) / total - 0.8 ** level) < 2 / total * level
    survivors = np.concatenate([np.abs(weights[k][masks[k]]) for k in masks])
    pruned = np.concatenate([np.abs(weights[k][~masks[k]]) for k in masks])
    assert pruned.max() <= survivors.min()
    assert masks["b/kernel"].mean() < masks["a/kernel"].mean()


def test_global_keeps_unpruned_layers_whole():
    weights = _random_weights()
    strategy = _strategy({k: v.size for k, v in weights.items()}, strategy="global", rate=0.5, unpruned=["b"])
    masks = strategy.prune(weights, M.ones_like(weights, weights), strategy.plan(1)[1])
    assert masks["b/kernel"].all() and masks["a/kernel"].sum() == 600


def test_random_masks_keep_per_layer_counts_and_are_seeded():
    weights = _random_weights()
    strategy = _strategy({k: v.size for k, v in weights.items()}, layer_rates={"a": 0.7, "b": 0.3})
    masks = strategy.prune(weights, M.ones_like(weights, weights), strategy.plan(1)[1])
    one, two = M.random_like(masks, 5), M.random_like(masks, 5)
    assert all(one[k].sum() == masks[k].sum() for k in masks)
    assert all(np.array_equal(one[k], two[k]) for k in masks)
    assert not np.array_equal(one["a/kernel"], masks["a/kernel"])


def test_unknown_layer_names_and_unused_rates_are_refused():
    with pytest.raises(ConfigError, match="no prunable layer named 'fc9'; prunable layers: fc1, fc2, output"):
        _strategy(unpruned=["fc9"])
    assert _strategy(unpruned=["fc2"], layer_rates={"fc1": 0.5}).rates["fc2/kernel"] == 0.0
    with pytest.raises(ConfigError, match="global does not use dense_rate"):
        PruningConfig(strategy="global", dense_rate=0.2).validate()
    with pytest.raises(ConfigError, match="leaves no layer to prune"):
        _strategy(unpruned=["fc1", "fc2", "output"])
