"""The datasets tflottery knows by name: input shape, classes and class names; the split seed every source shares."""
from __future__ import annotations

SPLIT_SEED = 0  # the validation/fraction split never changes with the run seed

FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DATASETS = {  # name: (input shape, number of classes, class names or None)
    "mnist": ((28, 28, 1), 10, [str(i) for i in range(10)]),
    "fashion_mnist": ((28, 28, 1), 10, FASHION_NAMES),
    "kmnist": ((28, 28, 1), 10, None),
    "cifar10": ((32, 32, 3), 10, ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]),
    "cifar100": ((32, 32, 3), 100, None),
    "svhn_cropped": ((32, 32, 3), 10, [str(i) for i in range(10)]),
    "query_count": ((24,), 10, [str(i) for i in range(10)]),
    "imdb_reviews": ((512,), 2, ["negative", "positive"]),
    "sst2": ((128,), 2, ["negative", "positive"]),
}
GENERATED = ("query_count",)  # token-id tasks `tflottery.data.sources.generated` makes
TEXT = {"imdb_reviews": ("imdb_reviews", "test"), "sst2": ("glue/sst2", "validation")}  # TFDS name, its labelled test
DIVISORS = {"query_count": 1.0, "imdb_reviews": 1.0, "sst2": 1.0}  # token ids as they are; every other dataset: 255
