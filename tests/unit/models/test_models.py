import numpy as np
import pytest

from tflottery import models
from tflottery.core.errors import ConfigError
from tflottery.core.errors import ModelError
from tflottery.pruning.wrap import prunable_kinds

SHAPES = {"lenet_300_100": (28, 28, 1), "lenet5": (28, 28, 1), "conv2": (32, 32, 3), "conv4": (32, 32, 3),
          "conv6": (32, 32, 3), "vgg19": (32, 32, 3), "resnet20": (32, 32, 3), "vit_tiny": (28, 28, 1),
          "text_encoder": (24,)}
PARAMS = {"lenet_300_100": 266610, "conv2": 4301642, "conv4": 2425930, "conv6": 2262602,
          "resnet20": 274042, "vit_tiny": 71882, "text_encoder": 104522}  # open_lth layout: bias-free convs, 1x1 conv + BN shortcuts (BN counts 4 per channel)


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_zoo_models_build_seeded_and_run(name):
    assert name in SHAPES, f"zoo model {name!r} has no input shape here: add it to SHAPES so its contract is tested"
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
    from tflottery.core.keras_compat import keras

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
    from tflottery.core.keras_compat import keras

    model = models.build("lenet_300_100", (28, 28, 1), 10)
    a = models.fresh_weights(model, 5)
    keras.utils.set_random_seed(99)  # global state has no say
    b = models.fresh_weights(model, 5)
    c = models.fresh_weights(model, 6)
    assert np.array_equal(a["fc1/kernel"], b["fc1/kernel"]) and not np.array_equal(a["fc1/kernel"], c["fc1/kernel"])
    assert not np.array_equal(a["fc1/kernel"], model.get_layer("fc1").kernel.numpy())


def test_fresh_attention_projections_are_drawn_apart():
    """A MultiHeadAttention hands its seeded initialiser to its four projections: fresh weights must not start
    query, key, value and output identical (they did, for every replicate's and every reinit's initialisation)."""
    from tflottery.core.keras_compat import keras

    inputs = keras.Input((4, 8))
    model = keras.Model(inputs, keras.layers.MultiHeadAttention(2, 4, name="mha")(inputs, inputs))
    a, b = models.fresh_weights(model, 5), models.fresh_weights(model, 5)
    kernels = [a[f"mha/{p}/kernel"] for p in ("query", "key", "value", "attention_output")]
    assert not any(np.array_equal(kernels[i], kernels[j]) for i in range(4) for j in range(i + 1, 4))
    assert all(np.array_equal(a[k], b[k]) for k in a)  # still the seed alone
    limit = np.sqrt(6 / (16 + 32))  # Glorot uniform with Keras' fans of a (8, 2, 4) kernel: as the layer draws it
    assert all(np.abs(k).max() <= limit and k.std() > 0.8 * limit / np.sqrt(3) for k in kernels[:3])


def test_keras3_model_gets_a_clear_error():
    import keras as keras3

    from tflottery.core.keras_compat import require_tf_keras

    model = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    with pytest.raises(ModelError, match="Keras 3 model.*import tf_keras as keras"):
        require_tf_keras(model)


def _dense_net(activation=None, name="net"):
    from tflottery.core.keras_compat import keras

    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="h")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation=activation, name="out")(hidden), name=name)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_a_probability_output_is_refused_because_the_engine_trains_logits(activation):
    with pytest.raises(ModelError, match=f"ends in a {activation}.*from_logits=True.*activation=None"):
        models.check_model(_dense_net(activation))
    from tflottery.core.keras_compat import keras

    net = _dense_net()
    with_layer = keras.Model(net.inputs, keras.layers.Softmax(name="p")(net.output))
    with pytest.raises(ModelError, match="ends in a softmax"):
        models.check_model(with_layer)
    assert models.check_model(_dense_net()) is not None


def test_nested_models_and_shared_layers_are_refused_not_half_saved():
    from tflottery.core.keras_compat import keras

    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="a"), keras.layers.Dense(8, name="b")],
                             name="sub")
    inputs = keras.Input((4,))
    nested = keras.Model(inputs, keras.layers.Dense(3, name="out")(inner(inputs)))
    with pytest.raises(ModelError, match="nests the model.*sub.*Flatten it"):
        models.check_model(nested)
    assert list(models.weight_variables(nested)) == ["sub/a/kernel", "sub/a/bias", "sub/b/kernel", "sub/b/bias",
                                                     "out/kernel", "out/bias"]  # by path: 0.2 silently half-saved
    shared = keras.layers.Dense(4, name="twice")
    x = keras.Input((4,))
    twice = keras.Model(x, keras.layers.Dense(3, name="out")(shared(shared(x))))
    with pytest.raises(ModelError, match="uses the layer.*twice.*more than once"):
        models.check_model(twice)
    one_model_twice = _dense_net()
    keras.Model(one_model_twice.inputs, one_model_twice.outputs)  # the same layers in a second model: still once
    models.check_model(one_model_twice)


def test_a_wrapped_model_keeps_pruned_weights_zero_in_a_gradient_tape_loop():
    """The forward pass uses weight x mask: no loop of the user's can revive a pruned weight."""
    import tensorflow as tf

    from tflottery.core.keras_compat import keras
    from tflottery.pruning import wrap

    model = wrap.wrap(models.lenet_300_100((28, 28, 1), 10, seed=1))
    rng = np.random.default_rng(0)
    masks = {k: rng.random(v.shape) < 0.2 for k, v in wrap.mask_variables(model).items()}
    wrap.set_masks(model, masks)
    x, y = rng.random((32, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 32)
    reference = models.get_weights(model)
    plain = models.lenet_300_100((28, 28, 1), 10, seed=1)
    models.set_weights(plain, reference)
    assert np.array_equal(model(x).numpy(), plain(x).numpy())  # the masked network's forward pass
    optimizer = keras.optimizers.Adam(0.01)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for _ in range(20):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss)
    for _ in range(5):
        model.train_on_batch(x, y)
    weights = models.get_weights(model)
    assert all(np.all(weights[k][~m] == 0) for k, m in masks.items())
    assert not np.array_equal(weights["fc1/kernel"], reference["fc1/kernel"])  # it did train


def test_the_transformers_build_seeded_from_allowlisted_layers_with_attention_drawn_apart():
    from tflottery.pruning.wrap import prunable_kinds
    from tflottery.tickets.read import check_architecture

    vit = models.build("vit_tiny", (28, 28, 1), 10, seed=1)
    assert vit.output_shape == (None, 10) and vit.get_layer("patch_embed").output_shape == (None, 16, 64)
    assert models.build("vit_tiny", (32, 32, 3), 10).get_layer("patch_embed").output_shape == (None, 64, 64)
    text = models.build("text_encoder", (24,), 10, seed=1)
    for model in (vit, text):
        for layer in model.get_config()["layers"]:
            check_architecture(layer, "model.json")  # a ticket rebuilds them without code
        weights = models.get_weights(model)
        kernels = [weights[f"block1_attention/{p}/kernel"] for p in ("query", "key", "value", "attention_output")]
        assert not any(np.array_equal(kernels[i], kernels[j]) for i in range(4) for j in range(i + 1, 4))
    again = models.get_weights(models.build("vit_tiny", (28, 28, 1), 10, seed=1))
    assert all(np.array_equal(again[k], v) for k, v in models.get_weights(vit).items())
    assert list(prunable_kinds(text)) == [
        "token_embed/embeddings", "position_embed/kernel", "block1_attention/query/kernel",
        "block1_attention/key/kernel", "block1_attention/value/kernel", "block1_attention/attention_output/kernel",
        "block1_mlp1/kernel", "block1_mlp2/kernel", "block2_attention/query/kernel", "block2_attention/key/kernel",
        "block2_attention/value/kernel", "block2_attention/attention_output/kernel", "block2_mlp1/kernel",
        "block2_mlp2/kernel", "output/kernel"]
