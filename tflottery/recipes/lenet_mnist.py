"""Frankle & Carbin (2019) Figures 3-4: LeNet-300-100 on MNIST, fc layers 20% and output 10% per level, rewound to initialisation; the ticket against random reinitialisation and random pruning, with early-stopping iteration.

Settings: recipes/lenet_mnist.toml (every field is a flag; --paper for the published settings).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("lenet_mnist")

if __name__ == "__main__":
    cli("lenet_mnist")
