import numpy as np
import pytest

from tflottery import models
from tflottery.config import ConfigError
from tflottery.errors import ModelError
from tflottery.pruning.wrap import prunable_kinds

SHAPES = {"lenet_300_100": (28, 28, 1), "lenet5": (28, 28, 1), "conv2": (32, 32, 3), "conv4": (32, 32, 3),
          "conv6": (32, 32, 3), "vgg19": (32, 32, 3), "resnet20": (32, 32, 3)}
PARAMS = {"lenet_300_100": 266610, "conv2": 4301642, "conv4": 2425930, "conv6": 2262602,
          "resnet20": 274042}  # open_lth layout: bias-free convs, 1x1 conv + BN shortcuts (BN counts 4 per channel)


@pytest.mark.parametrize("name", list(SHAPES))
def test_zoo_models_build_seeded_and_run(name):
    one, two = models.build(name, SHAPES[name], 10, seed=3), models.build(name, SHAPES[name], 10, seed=3)
    other = models.build(name, SHAPES[name], 10, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(one.get_weights(), two.get_weights()))
    assert not np.array_equal(one.get_weights()[0], other.get_weights()[0])
    x = np.random.default_rng(0).random((2, *SHAPES[name]), dtype=np.float32)  # generated tensors of the right shape
    assert one(x).shape == (2, 10)
    assert list(prunable_kinds(one))[-1] == "output/kernel"
    if name in PARAMS:
        assert one.count_params() == PARAMS[name]


def test_kernels_are_gaussian_glorot():
    model = models.build("lenet_300_100", (28, 28, 1), 10, seed=0)
    kernel = model.get_layer("fc1").kernel.numpy()
    expected = np.sqrt(2.0 / (784 + 300))
    assert abs(kernel.std() / expected - 1) < 0.05  # truncated normal: std within 5% of Glorot's


def test_unknown_model_names_the_zoo():
    with pytest.raises(ConfigError, match="available: lenet_300_100, lenet5"):
        models.build("alexnet", (28, 28, 1), 10)


def test_a_registered_builder_joins_the_zoo():
    from tflottery.keras_compat import keras

    def tiny(input_shape, num_classes=10, seed=0):
        inputs = keras.Input(input_shape, name="image")
        x = keras.layers.Flatten(name="flatten")(inputs)
        return keras.Model(inputs, keras.layers.Dense(num_classes, name="output")(x), name="tiny")

    models.register("tiny", tiny)
    try:
        assert models.build("tiny", (28, 28, 1), 10).count_params() == 7850
    finally:
        del models.MODELS["tiny"]


def test_fresh_weights_depend_on_the_seed_alone():
    from tflottery.keras_compat import keras

    model = models.build("lenet_300_100", (28, 28, 1), 10)
    a = models.fresh_weights(model, 5)
    keras.utils.set_random_seed(99)  # global state has no say
    b = models.fresh_weights(model, 5)
    c = models.fresh_weights(model, 6)
    assert np.array_equal(a["fc1/kernel"], b["fc1/kernel"]) and not np.array_equal(a["fc1/kernel"], c["fc1/kernel"])
    assert not np.array_equal(a["fc1/kernel"], model.get_layer("fc1").kernel.numpy())


def test_keras3_model_gets_a_clear_error():
    import keras as keras3

    from tflottery.keras_compat import require_tf_keras

    model = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    with pytest.raises(ModelError, match="Keras 3 model.*import tf_keras as keras"):
        require_tf_keras(model)
