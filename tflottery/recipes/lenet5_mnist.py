"""IMP on LeNet-5 on MNIST: test accuracy against weights remaining and against training iterations per level, with the random-reinitialisation baseline.

Settings: recipes/lenet5_mnist.toml (every field is a flag; --paper for the published settings).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("lenet5_mnist")

if __name__ == "__main__":
    cli("lenet5_mnist")
