"""IMP on the 784-300-100-10 MLP on MNIST: test accuracy against weights remaining and against training iterations per level, with the random-reinitialisation baseline.

Settings: recipes/fc1_mnist.toml (every field is a flag; --paper for the published settings).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("fc1_mnist")

if __name__ == "__main__":
    cli("fc1_mnist")
