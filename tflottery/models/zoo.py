"""The model zoo of Frankle & Carbin (2019, Figure 2) plus VGG-19 and ResNet-20 for CIFAR.

Every builder takes `(input_shape, num_classes, seed)` and returns a Functional tf_keras
model whose kernels are drawn from a Gaussian Glorot initialiser: the same seed gives the
same initial weights. Layer names are stable (`fc1`, `conv2`, ..., `output`), because
masks and rewind weights are keyed by them. Any Sequential or Functional tf_keras model
works with the rest of the toolkit, not only these.
"""
from __future__ import annotations

from typing import Callable

from tflottery.core.errors import ConfigError
from tflottery.core.keras_compat import keras

layers = keras.layers


class _Seeds:
    """Distinct, reproducible initialiser seeds for each layer of one model."""

    def __init__(self, seed: int):
        self.seed, self.count = seed, 0

    def glorot(self):
        self.count += 1
        return keras.initializers.GlorotNormal(seed=self.seed * 1000 + self.count)

    def he(self):
        self.count += 1
        return keras.initializers.HeNormal(seed=self.seed * 1000 + self.count)


def _dense_head(x, widths, num_classes, seeds: _Seeds):
    for i, width in enumerate(widths, start=1):
        x = layers.Dense(width, activation="relu", kernel_initializer=seeds.glorot(), name=f"fc{i}")(x)
    return layers.Dense(num_classes, kernel_initializer=seeds.glorot(), name="output")(x)


def lenet_300_100(input_shape, num_classes: int = 10, seed: int = 0) -> keras.Model:
    """784-300-100-10 fully connected network (Frankle & Carbin's LeNet)."""
    seeds = _Seeds(seed)
    inputs = keras.Input(input_shape, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    return keras.Model(inputs, _dense_head(x, [300, 100], num_classes, seeds), name="lenet_300_100")


def lenet5(input_shape, num_classes: int = 10, seed: int = 0) -> keras.Model:
    """LeNet-5: conv 6@5x5, pool, conv 16@5x5, pool, fc 120, 84."""
    seeds = _Seeds(seed)
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(6, 5, padding="same", activation="relu", kernel_initializer=seeds.glorot(), name="conv1")(inputs)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Conv2D(16, 5, activation="relu", kernel_initializer=seeds.glorot(), name="conv2")(x)
    x = layers.MaxPooling2D(name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, _dense_head(x, [120, 84], num_classes, seeds), name="lenet5")


def _conv_net(name: str, blocks: list[int]):
    def build(input_shape, num_classes: int = 10, seed: int = 0) -> keras.Model:
        seeds = _Seeds(seed)
        inputs = keras.Input(input_shape, name="image")
        x, n = inputs, 0
        for b, width in enumerate(blocks, start=1):
            for _ in range(2):
                n += 1
                x = layers.Conv2D(width, 3, padding="same", activation="relu",
                                  kernel_initializer=seeds.glorot(), name=f"conv{n}")(x)
            x = layers.MaxPooling2D(name=f"pool{b}")(x)
        x = layers.Flatten(name="flatten")(x)
        return keras.Model(inputs, _dense_head(x, [256, 256], num_classes, seeds), name=name)

    build.__doc__ = f"{name}: {len(blocks)} blocks of two 3x3 convolutions {blocks}, pool, fc 256, 256."
    return build


conv2, conv4, conv6 = _conv_net("conv2", [64]), _conv_net("conv4", [64, 128]), _conv_net("conv6", [64, 128, 256])


def vgg19(input_shape, num_classes: int = 10, seed: int = 0) -> keras.Model:
    """VGG-19 for CIFAR (open_lth's vgg_19): 16 conv+BN layers, global average pool, linear output."""
    seeds = _Seeds(seed)
    plan = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
    inputs = keras.Input(input_shape, name="image")
    x, n, p = inputs, 0, 0
    for item in plan:
        if item == "M":
            p += 1
            x = layers.MaxPooling2D(name=f"pool{p}")(x)
            continue
        n += 1
        x = layers.Conv2D(item, 3, padding="same", use_bias=False, kernel_initializer=seeds.he(), name=f"conv{n}")(x)
        x = layers.BatchNormalization(name=f"bn{n}")(x)
        x = layers.ReLU(name=f"relu{n}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=seeds.glorot(), name="output")(x)
    return keras.Model(inputs, outputs, name="vgg19")


def resnet20(input_shape, num_classes: int = 10, seed: int = 0) -> keras.Model:
    """ResNet-20 for CIFAR (He et al. 2016; open_lth's cifar_resnet_20): 3 stages x 3 blocks, widths 16/32/64."""
    seeds = _Seeds(seed)

    def conv_bn(x, width, stride, name, relu=True):
        x = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False,
                          kernel_initializer=seeds.he(), name=f"{name}_conv")(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x) if relu else x

    inputs = keras.Input(input_shape, name="image")
    x = conv_bn(inputs, 16, 1, "stem")
    for stage, width in enumerate([16, 32, 64]):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            name = f"s{stage + 1}b{block + 1}"
            y = conv_bn(x, width, stride, f"{name}a")
            y = conv_bn(y, width, 1, f"{name}b", relu=False)
            if stride != 1 or x.shape[-1] != width:
                x = layers.Conv2D(width, 1, strides=stride, use_bias=False, kernel_initializer=seeds.he(),
                                  name=f"{name}_shortcut_conv")(x)
                x = layers.BatchNormalization(name=f"{name}_shortcut_bn")(x)
            x = layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=seeds.glorot(), name="output")(x)
    return keras.Model(inputs, outputs, name="resnet20")


MODELS: dict[str, Callable[..., keras.Model]] = {}


def register(name: str, builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
    """Add a builder `(input_shape, num_classes, seed) -> Functional tf_keras model` to the zoo."""
    MODELS[name] = builder
    return builder


def _transformers() -> dict:
    from tflottery.models.transformers import text_encoder, vit_tiny

    return {"vit_tiny": vit_tiny, "text_encoder": text_encoder}


for _name, _builder in {"lenet_300_100": lenet_300_100, "lenet5": lenet5, "conv2": conv2, "conv4": conv4,
                        "conv6": conv6, "vgg19": vgg19, "resnet20": resnet20, **_transformers()}.items():
    register(_name, _builder)


def build(name: str, input_shape, num_classes: int, seed: int = 0) -> keras.Model:
    """The zoo model `name`, seeded."""
    if name not in MODELS:
        raise ConfigError(f"Unknown model {name!r}; available: {', '.join(MODELS)}.")
    return MODELS[name](tuple(input_shape), num_classes, seed)
