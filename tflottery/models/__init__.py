"""Models: the zoo (a registry of seeded builders), fresh initialisation, weights by name, architecture checks."""
from tflottery.models.init import fresh_weights, reseeded
from tflottery.models.surgery import architecture_digest, check_fits, check_model, with_head
from tflottery.models.weights import get_weights, set_weights, weight_variables
from tflottery.models.zoo import (MODELS, build, conv2, conv4, conv6, lenet5, lenet_300_100, register, resnet20,
                                  vgg19)

__all__ = ["MODELS", "architecture_digest", "build", "check_fits", "check_model", "conv2", "conv4", "conv6",
           "fresh_weights", "get_weights", "lenet5", "lenet_300_100", "register", "reseeded", "resnet20",
           "set_weights", "vgg19", "weight_variables", "with_head"]
