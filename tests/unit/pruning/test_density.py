"""Per-layer densities for sparse training from scratch: ERK and uniform equal a hand computation."""
import math

import numpy as np
import pytest

from tflottery.core.errors import ConfigError
from tflottery.pruning.density import layer_counts

LENET = {"fc1/kernel": (784, 300), "fc2/kernel": (300, 100), "fc3/kernel": (100, 10)}


def test_erk_on_lenet_300_100_is_the_hand_computation():
    total = round(0.036 * 266200)  # 3.6% of LeNet-300-100's kernels
    # raw_l = (n_in + n_out) / (n_in n_out); eps = total / sum(raw_l n_l) = total / ((784+300) + (300+100) + (100+10))
    eps = total / (1084 + 400 + 110)
    hand = {"fc1/kernel": round(eps * 1084), "fc2/kernel": round(eps * 400), "fc3/kernel": round(eps * 110)}
    assert layer_counts("erk", LENET, total) == hand
    densities = {k: hand[k] / math.prod(s) for k, s in LENET.items()}
    assert densities["fc1/kernel"] == pytest.approx(0.0277, abs=1e-4)
    assert densities["fc3/kernel"] == pytest.approx(0.6615, abs=1e-3)  # the small output layer keeps most


def test_erk_keeps_dense_the_layers_the_formula_would_push_past_one_and_solves_again():
    conv = {"conv1/kernel": (3, 3, 1, 4), "conv2/kernel": (3, 3, 4, 8), "fc/kernel": (512, 10)}
    total = 2722  # half of the 36 + 288 + 5120 weights
    got = layer_counts("erk", conv, total)
    # raw: conv1 (3+3+1+4)/36, conv2 (3+3+4+8)/288, fc (512+10)/5120; eps = total / sum(raw_l n_l) = total / (11+18+522)
    raw = {"conv1/kernel": 11 / 36, "conv2/kernel": 18 / 288, "fc/kernel": 522 / 5120}
    assert total / (11 + 18 + 522) * raw["conv1/kernel"] > 1  # conv1 would pass 1: dense, eps solved again
    eps = (total - 36) / (18 + 522)
    assert all(eps * raw[k] <= 1 for k in ("conv2/kernel", "fc/kernel"))
    assert got == {"conv1/kernel": 36, "conv2/kernel": round(eps * 18), "fc/kernel": round(eps * 522)}
    assert abs(sum(got.values()) - total) <= 2


def test_uniform_keeps_the_first_layer_dense_only_where_it_fits():
    conv = {"conv1/kernel": (3, 3, 3, 16), "conv2/kernel": (3, 3, 16, 32), "fc/kernel": (2048, 10)}
    total = round(0.1 * 25520)
    got = layer_counts("uniform", conv, total)
    density = (total - 432) / (4608 + 20480)
    assert got == {"conv1/kernel": 432, "conv2/kernel": round(density * 4608), "fc/kernel": round(density * 20480)}
    lenet = layer_counts("uniform", LENET, round(0.036 * 266200))  # fc1 is 88% of the weights: all at 3.6%
    assert {k: round(v / math.prod(LENET[k]), 3) for k, v in lenet.items()} == {k: 0.036 for k in LENET}


def test_bad_densities_are_one_line():
    with pytest.raises(ConfigError, match="density='er': use one of ticket, uniform, erk"):
        layer_counts("er", LENET, 100)
    with pytest.raises(ConfigError, match="do not fit"):
        layer_counts("erk", LENET, 10 ** 9)
