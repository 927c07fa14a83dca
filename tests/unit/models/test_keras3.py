"""Models move between tf_keras and Keras 3 by their allowlisted layer settings: same names, weights, outputs."""
import numpy as np
import pytest

from tflottery import models
from tflottery.core.errors import ModelError
from tflottery.core.keras_compat import keras
from tflottery.models.keras3 import get_weights, is_keras3, translate
from tflottery.pruning.targets import default_targets


@pytest.mark.parametrize("build", [models.lenet_300_100, models.lenet5])
def test_a_model_goes_to_keras3_and_back_with_its_names_weights_and_outputs(build):
    model = build((28, 28, 1), 10, seed=1)
    there = translate(model, to=3)
    back = translate(there, to=2)
    assert is_keras3(there) and not is_keras3(back) and not is_keras3(model)
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    assert np.array_equal(np.asarray(there(x)), model(x).numpy())  # the TensorFlow backend: the same kernels
    assert np.array_equal(back(x).numpy(), model(x).numpy())
    ours, theirs = get_weights(model), get_weights(there)
    assert sorted(ours) == sorted(theirs) and all(np.array_equal(ours[k], theirs[k]) for k in ours)
    assert list(default_targets(there.layers)) == [k for k in ours if k.endswith("/kernel")]


def test_a_sequence_model_goes_to_keras3_and_back_with_its_paths_weights_and_outputs():
    """Embedding, EinsumDense, LSTM, GRU, SimpleRNN, LayerNormalization, pooling: their variables keep their paths
    (`lstm/lstm_cell/recurrent_kernel`) in both libraries, so masks and tickets move between them."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((10,), name="tokens")
    x = keras.layers.Embedding(30, 8, name="embed")(inputs)
    x = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 8), bias_axes="d", name="proj")(x)
    x = keras.layers.LSTM(6, return_sequences=True, name="lstm")(x)
    x = keras.layers.GRU(5, return_sequences=True, name="gru")(x)
    x = keras.layers.SimpleRNN(4, return_sequences=True, name="rnn")(x)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="output")(x), name="seq")
    there = translate(model, to=3)
    back = translate(there, to=2)
    x = np.random.default_rng(0).integers(0, 30, (4, 10)).astype("float32")
    assert np.abs(np.asarray(there(x)) - model(x).numpy()).max() < 1e-5
    assert np.abs(back(x).numpy() - model(x).numpy()).max() < 1e-6
    ours, theirs = get_weights(model), get_weights(there)
    assert list(ours) == list(theirs) and all(np.array_equal(ours[k], theirs[k]) for k in ours)
    assert "lstm/lstm_cell/recurrent_kernel" in ours and "gru/gru_cell/kernel" in ours
    assert list(default_targets(there.layers)) == list(default_targets(model.layers))


def test_attention_moves_with_its_query_value_key_and_causal_mask_and_a_mask_tensor_is_refused():
    """tf_keras records value and key as keyword arguments, Keras 3 as arguments: both rebuild the same call, the
    causal mask included (a non-causal rebuild gives other outputs)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="tokens")
    x = keras.layers.Embedding(30, 8, name="embed")(inputs)
    x = keras.layers.MultiHeadAttention(2, 4, name="self")(x, x, use_causal_mask=True)
    x = keras.layers.MultiHeadAttention(2, 4, value_dim=3, name="cross")(x, x, x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D(name="pool")(x), name="attn")
    there = translate(model, to=3)
    back = translate(there, to=2)
    tokens = np.random.default_rng(0).integers(0, 30, (4, 6)).astype("float32")
    assert np.abs(np.asarray(there(tokens)) - model(tokens).numpy()).max() < 1e-6
    assert np.abs(back(tokens).numpy() - model(tokens).numpy()).max() < 1e-6
    assert list(get_weights(there)) == list(get_weights(model))
    config = model.get_config()
    config["layers"][2]["inbound_nodes"][0][0][3].pop("use_causal_mask")
    open_ = keras.Model.from_config(config)
    open_.set_weights(model.get_weights())
    assert np.abs(open_(tokens).numpy() - model(tokens).numpy()).max() > 1e-3
    mask = keras.Input((6, 6), name="mask")
    masked = keras.Model([inputs, mask], keras.layers.MultiHeadAttention(2, 4, name="mha")(
        keras.layers.Embedding(30, 8)(inputs), keras.layers.Embedding(30, 8)(inputs), attention_mask=mask))
    with pytest.raises(ModelError, match="'mha' is called with an attention_mask tensor"):
        translate(masked, to=3)


def test_a_layer_it_does_not_move_is_refused_by_name():
    inputs = keras.Input((4, 8), name="x")
    model = keras.Model(inputs, keras.layers.Attention(name="dot")([inputs, inputs]))
    with pytest.raises(ModelError, match="layer 'dot' is a Attention, which tflottery does not move"):
        translate(model, to=3)


def test_an_activation_given_as_code_is_refused():
    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, activation=lambda t: t * 2, name="d")(inputs))
    with pytest.raises(ModelError, match="moves activations by name only"):
        translate(model, to=3)


def test_a_subclassed_model_is_refused():
    class Mine(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ModelError, match="subclassed"):
        translate(Mine(), to=3)
