"""Models holding every layer kind that masks by variable prunes, for the tests of targets (unit and slow tier)."""
from tflottery.core.keras_compat import keras


def token_model():
    """Every sequence kind: Embedding, MultiHeadAttention (its four EinsumDense projections), EinsumDense,
    LSTM, GRU, Dense."""
    inputs = keras.Input((12,), dtype="int32")
    x = keras.layers.Embedding(40, 16, name="embed")(inputs)
    x = keras.layers.MultiHeadAttention(2, 8, name="mha")(x, x)
    x = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 12), name="proj")(x)
    x = keras.layers.LSTM(10, return_sequences=True, name="lstm")(x)
    x = keras.layers.GRU(6, name="gru")(x)
    return keras.Model(inputs, keras.layers.Dense(5, name="output")(x), name="tokens")


def image_model():
    """Every convolution kind: Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, name="depthwise")(x)
    x = keras.layers.SeparableConv2D(6, 3, name="separable")(x)
    x = keras.layers.Reshape((22, 22 * 6))(x)
    x = keras.layers.Conv1D(4, 3, name="conv1d")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="output")(x), name="images")
