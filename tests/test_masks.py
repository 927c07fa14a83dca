import numpy as np
import pytest

from tflottery.config import PruningConfig
from tflottery.pruning import masks as M

LENET = {"fc1/kernel": 784 * 300, "fc2/kernel": 300 * 100, "output/kernel": 100 * 10}
KINDS = {k: "dense" for k in LENET}


def test_layerwise_plan_matches_frankle_and_carbin():
    config = PruningConfig(dense_rate=0.2)
    rates = M.layer_rates(KINDS, config)
    assert rates == {"fc1/kernel": 0.2, "fc2/kernel": 0.2, "output/kernel": 0.1}
    rows = M.plan(LENET, rates, 16, config)
    paper = {3: 51.3, 7: 21.1, 9: 13.5, 12: 7.0, 15: 3.6, 16: 2.9}
    for level, percent in paper.items():
        assert round(100 * rows[level]["remaining"], 1) == percent


def _random_weights(seed=0):
    rng = np.random.default_rng(seed)
    return {"a/kernel": rng.normal(size=(40, 30)), "b/kernel": rng.normal(size=(30, 10))}


def test_real_masks_follow_the_plan_and_are_nested():
    weights = _random_weights()
    masks = {k: np.ones(v.shape, bool) for k, v in weights.items()}
    rates = {"a/kernel": 0.2, "b/kernel": 0.1}
    plan = M.plan({k: v.size for k, v in weights.items()}, rates, 8, PruningConfig())
    for level in range(1, 9):
        new = M.layerwise(weights, masks, rates)
        assert all(np.all(new[k] <= masks[k]) for k in masks)  # inside the previous mask
        assert {k: int(v.sum()) for k, v in new.items()} == {k: plan[level][k] for k in masks}
        masks = new
        weights = {k: v * 1.01 for k, v in _random_weights(level).items()}  # "trained" weights change


def test_layerwise_removes_the_smallest_survivors():
    w = {"x/kernel": np.array([[0.5, -0.1, 0.3, -2.0, 0.05]])}
    mask = {"x/kernel": np.array([[True, True, True, True, False]])}
    new = M.layerwise(w, mask, {"x/kernel": 0.5})
    assert new["x/kernel"].tolist() == [[True, False, False, True, False]]


def test_global_uses_one_threshold_and_gives_point_eight_to_the_L():
    weights = _random_weights()
    weights["b/kernel"] *= 0.1  # a small-magnitude layer loses far more under a global threshold
    masks = {k: np.ones(v.shape, bool) for k, v in weights.items()}
    total = sum(m.size for m in masks.values())
    for level in range(1, 6):
        masks = M.global_(weights, masks, 0.2)
        assert abs(sum(m.sum() for m in masks.values()) / total - 0.8 ** level) < 2 / total * level
    survivors = np.concatenate([np.abs(weights[k][masks[k]]) for k in masks])
    pruned = np.concatenate([np.abs(weights[k][~masks[k]]) for k in masks])
    assert pruned.max() <= survivors.min()
    assert masks["b/kernel"].mean() < masks["a/kernel"].mean()


def test_random_masks_keep_per_layer_counts_and_are_seeded():
    masks = M.layerwise(_random_weights(), {k: np.ones(v.shape, bool) for k, v in _random_weights().items()},
                        {"a/kernel": 0.7, "b/kernel": 0.3})
    one, two = M.random_like(masks, 5), M.random_like(masks, 5)
    assert all(one[k].sum() == masks[k].sum() for k in masks)
    assert all(np.array_equal(one[k], two[k]) for k in masks)
    assert not np.array_equal(one["a/kernel"], masks["a/kernel"])


def test_unknown_layer_names_are_refused():
    from tflottery.config import ConfigError

    with pytest.raises(ConfigError, match="no prunable layer named 'fc9'; prunable layers: fc1, fc2, output"):
        M.layer_rates(KINDS, PruningConfig(unpruned=["fc9"]))
    assert M.layer_rates(KINDS, PruningConfig(unpruned=["fc2"], layer_rates={"fc1": 0.5}))["fc2/kernel"] == 0.0
