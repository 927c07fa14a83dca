"""Models: the zoo (a registry of seeded builders) and fresh initialisation of any architecture."""
from tflottery.models.init import fresh_weights, reseeded
from tflottery.models.zoo import (MODELS, build, conv2, conv4, conv6, lenet5, lenet_300_100, register, resnet20,
                                  vgg19)

__all__ = ["MODELS", "build", "conv2", "conv4", "conv6", "fresh_weights", "lenet5", "lenet_300_100", "register",
           "reseeded", "resnet20", "vgg19"]
