"""Transformers for the zoo: a small vision transformer and a small text encoder, pre-norm, learned positions.

Both are Functional tf_keras models of allowlisted layers only, so their tickets rebuild without
code (`tflottery.tickets`) and they move to Keras 3 by their settings (`tflottery.models.keras3`).
Patches are cut by Reshape + Permute and embedded by one `EinsumDense` whose bias spans positions
and channels: a linear patch projection plus a learned position embedding, the ViT's own sum
(Dosovitskiy et al. 2021), in one layer. The text encoder embeds token ids with an `Embedding` and
adds learned positions the same way. Each encoder block is
x + MHA(LN(x)), then x + MLP(LN(x)) with a GELU MLP of `mlp` x the width; the output is the mean
over positions, normalised, then a linear head. Names are stable (`patch_embed`, `block1_attention`,
`block1_mlp1`, ..., `output`): masks are keyed by them. Pruning follows Chen et al. 2020 when the
recipes leave the embeddings dense (`pruning.unpruned`), the attention and MLP weights pruned.
"""
from __future__ import annotations

from tflottery.core.errors import ConfigError
from tflottery.core.keras_compat import keras

layers = keras.layers


def _initializer(seed: int, count: list):
    count[0] += 1
    return keras.initializers.GlorotUniform(seed=seed * 1000 + count[0])


def _encoder(x, width: int, depth: int, heads: int, mlp: int, seed: int, count: list, pool: str = "mean"):
    if width % heads:
        raise ConfigError(f"width={width} must divide into heads={heads}.")
    for b in range(1, depth + 1):
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_norm1")(x)
        h = layers.MultiHeadAttention(heads, width // heads, kernel_initializer=_initializer(seed, count),
                                      name=f"block{b}_attention")(h, h)
        x = layers.Add(name=f"block{b}_add1")([x, h])
        h = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_norm2")(x)
        h = layers.Dense(mlp * width, activation="gelu", kernel_initializer=_initializer(seed, count),
                         name=f"block{b}_mlp1")(h)
        h = layers.Dense(width, kernel_initializer=_initializer(seed, count), name=f"block{b}_mlp2")(h)
        x = layers.Add(name=f"block{b}_add2")([x, h])
    x = layers.LayerNormalization(epsilon=1e-6, name="norm")(x)
    if pool == "flatten":  # every position's features to the head: it reads the position it needs
        return layers.Flatten(name="pool")(x)
    return layers.GlobalAveragePooling1D(name="pool")(x)


def _seeded(model: keras.Model, seed: int) -> keras.Model:
    """The model with each attention projection drawn under a seed of its own (`models.init`)."""
    from tflottery.models.init import reseed_projections

    for layer in model.layers:
        if isinstance(layer, layers.MultiHeadAttention):
            reseed_projections(layer, seed)
    return model


def vit(input_shape, num_classes: int = 10, seed: int = 0, patch: int = 7, width: int = 64, depth: int = 2,
        heads: int = 4, mlp: int = 2, name: str = "vit_tiny") -> keras.Model:
    """A vision transformer on images of `input_shape` (H, W, C), cut into `patch` x `patch` patches."""
    height, width_px, channels = input_shape
    if height % patch or width_px % patch:
        raise ConfigError(f"patch={patch} must divide the image ({height}x{width_px}).")
    rows, cols = height // patch, width_px // patch
    count = [0]
    inputs = keras.Input(input_shape, name="image")
    x = layers.Reshape((rows, patch, cols, patch, channels), name="grid")(inputs)
    x = layers.Permute((1, 3, 2, 4, 5), name="patch_order")(x)
    x = layers.Reshape((rows * cols, patch * patch * channels), name="patches")(x)
    x = layers.EinsumDense("abc,cd->abd", output_shape=(rows * cols, width), bias_axes="bd",
                           kernel_initializer=_initializer(seed, count), name="patch_embed")(x)
    x = _encoder(x, width, depth, heads, mlp, seed, count)
    outputs = layers.Dense(num_classes, kernel_initializer=_initializer(seed, count), name="output")(x)
    return _seeded(keras.Model(inputs, outputs, name=name), seed)


def vit_tiny(input_shape, num_classes: int = 10, seed: int = 0) -> keras.Model:
    """ViT-tiny for 28x28 (patches of 7: 16 tokens) or 32x32 images (patches of 4: 64 tokens): width 64, 2 blocks,
    4 heads, MLP 128."""
    patch = 4 if input_shape[0] % 7 else 7
    return vit(input_shape, num_classes, seed, patch=patch)


def text_encoder(input_shape, num_classes: int = 2, seed: int = 0, vocabulary: int = 257, width: int = 64,
                 depth: int = 2, heads: int = 4, mlp: int = 2, pool: str = "flatten") -> keras.Model:
    """A text classifier on token ids of length `input_shape[0]` (ids below `vocabulary`: 257 holds UTF-8 bytes + 1
    and padding, the ids of the TFDS text datasets here, and query_count's 16)."""
    (length,) = input_shape
    count = [0]
    inputs = keras.Input((length,), name="tokens")
    x = layers.Embedding(vocabulary, width, embeddings_initializer=keras.initializers.RandomNormal(
        stddev=0.02, seed=seed * 1000), name="token_embed")(inputs)
    x = layers.EinsumDense("abc,cd->abd", output_shape=(length, width), bias_axes="bd",
                           kernel_initializer=_initializer(seed, count), name="position_embed")(x)
    x = _encoder(x, width, depth, heads, mlp, seed, count, pool)
    outputs = layers.Dense(num_classes, kernel_initializer=_initializer(seed, count), name="output")(x)
    return _seeded(keras.Model(inputs, outputs, name="text_encoder"), seed)
