"""Masks and pruning strategies: exact counts, nesting, one global threshold, plans known in advance."""
import numpy as np
import pytest

from tflottery.config import PruningConfig
from tflottery.core.errors import ConfigError
from tflottery.pruning import masks as M
from tflottery.pruning.resolve import bind, check
from tflottery.pruning.strategies import GLOBAL

LENET = {"fc1/kernel": (784, 300), "fc2/kernel": (300, 100), "output/kernel": (100, 10)}


def strategy_for(shapes=LENET, kinds=None, **config):
    return bind(PruningConfig.from_dict(config), kinds or {k: "dense" for k in shapes}, shapes)


def test_layerwise_plan_matches_frankle_and_carbin():
    strategy = strategy_for(dense_rate=0.2)
    assert strategy.rates == {"fc1/kernel": 0.2, "fc2/kernel": 0.2, "output/kernel": 0.1}
    rows = strategy.plan(16)
    total = sum(strategy.sizes.values())
    paper = {3: 51.3, 7: 21.1, 9: 13.5, 12: 7.0, 15: 3.6, 16: 2.9}
    for level, percent in paper.items():
        assert round(100 * sum(rows[level].values()) / total, 1) == percent
    assert strategy.levels_for(0.036) == 15
    assert strategy.identity() == strategy_for(dense_rate=0.2, conv_rate=0.1).identity()  # defaults hash alike


def _random_weights(seed=0):
    rng = np.random.default_rng(seed)
    return {"a/kernel": rng.normal(size=(40, 30)), "b/kernel": rng.normal(size=(30, 10))}


def _shapes(weights):
    return {k: v.shape for k, v in weights.items()}


def test_real_masks_follow_the_plan_and_are_nested():
    weights = _random_weights()
    strategy = strategy_for(_shapes(weights), layer_rates={"a": 0.2, "b": 0.1})
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
    strategy = strategy_for({"x/kernel": (1, 5)}, output_rate=0.5)  # one layer: the output layer
    assert strategy.prune(w, mask, {"x/kernel": 2})["x/kernel"].tolist() == [[True, False, False, True, False]]


def test_global_uses_one_threshold_and_gives_point_eight_to_the_L():
    weights = _random_weights()
    weights["b/kernel"] *= 0.1  # a small-magnitude layer loses far more under a global threshold
    strategy = strategy_for(_shapes(weights), strategy="global")
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
    strategy = strategy_for(_shapes(weights), strategy="global", rate=0.5, unpruned=["b"])
    masks = strategy.prune(weights, M.ones_like(weights, weights), strategy.plan(1)[1])
    assert masks["b/kernel"].all() and masks["a/kernel"].sum() == 600


def test_random_masks_keep_per_layer_counts_and_are_seeded():
    weights = _random_weights()
    strategy = strategy_for(_shapes(weights), layer_rates={"a": 0.7, "b": 0.3})
    masks = strategy.prune(weights, M.ones_like(weights, weights), strategy.plan(1)[1])
    one, two = M.random_like(masks, 5), M.random_like(masks, 5)
    assert all(one[k].sum() == masks[k].sum() for k in masks)
    assert all(np.array_equal(one[k], two[k]) for k in masks)
    assert not np.array_equal(one["a/kernel"], masks["a/kernel"])


def test_unknown_layer_names_and_settings_of_other_strategies_are_refused():
    with pytest.raises(ConfigError, match="no prunable layer named 'fc9' \\(nor weight path, nor glob\\); prunable layers: fc1, fc2, output"):
        strategy_for(unpruned=["fc9"])
    assert strategy_for(unpruned=["fc2"], layer_rates={"fc1": 0.5}).rates["fc2/kernel"] == 0.0
    with pytest.raises(ConfigError, match="global does not use dense_rate: it reads rate.*layerwise, early_bird"):
        check(PruningConfig.from_dict({"strategy": "global", "dense_rate": 0.2}))
    with pytest.raises(ConfigError, match="Unknown flag --dense_rat: it is neither"):
        check(PruningConfig.from_dict({"dense_rat": 0.2}))
    with pytest.raises(ConfigError, match="leaves no layer to prune"):
        strategy_for(unpruned=["fc1", "fc2", "output"])


def test_the_settings_live_in_settings_and_flat_keys_are_the_same_thing():
    flat, nested = PruningConfig.from_dict({"dense_rate": 0.3}), PruningConfig.from_dict({"settings": {"dense_rate": 0.3}})
    assert flat == nested and flat.settings == {"dense_rate": 0.3}
    with pytest.raises(ConfigError, match="given both directly and in pruning.settings"):
        PruningConfig.from_dict({"dense_rate": 0.3, "settings": {"dense_rate": 0.2}})


@pytest.mark.parametrize("config,message", [
    ({"strategy": "block"}, r"spelled --strategy=layerwise --structure='\{\"block\": \[1, 4\]\}'"),
    ({"strategy": "block_global"}, r"--strategy=global --structure="),
    ({"block_shape": [1, 4]}, "blocks are a structure now"),
    ({"strategy": "magic"}, "unknown: use layerwise or global or early_bird"),
    ({"dense_rate": 1.2}, r"must lie in \[0, 1\)"),
    ({"structure": {"block": [0, 4]}}, "must be two positive sizes"),
    ({"structure": {"n": 4, "m": 4}}, "need 1 <= n < m"),
    ({"structure": {"rows": 4}}, "names no single structure"),
])
def test_old_spellings_and_bad_settings_are_one_clear_error(config, message):
    with pytest.raises(ConfigError, match=message):
        check(PruningConfig.from_dict(config))


def test_stored_configs_of_0_2_are_upgraded_to_the_new_spelling():
    from tflottery.pruning.resolve import upgrade

    old = {"strategy": "block", "rate": None, "dense_rate": 0.2, "conv_rate": None, "output_rate": None,
           "layer_rates": {}, "block_shape": [1, 16], "unstructured": ["fc2"], "unpruned": [], "one_shot": False,
           "rewind": "0it", "rewind_grid": [], "lr_rewind": False, "early_bird_window": None,
           "early_bird_threshold": None, "early_bird_every": None}
    new = PruningConfig.from_dict(upgrade(old))
    assert (new.strategy, new.settings, new.structure) == ("layerwise", {"dense_rate": 0.2},
                                                           {"block": [1, 16], "unstructured": ["fc2"]})
    check(new)
