"""Lottery tickets in a vision transformer: vit_tiny on Fashion-MNIST, rewinding to 0 and to an early step, the
ticket against reinit and random pruning over 3 replicates, and the instability barriers at both points.

Settings: recipes/vit_fashion_mnist.toml (every field is a flag; --paper for 10 epochs a level).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("vit_fashion_mnist")

if __name__ == "__main__":
    cli("vit_fashion_mnist")
