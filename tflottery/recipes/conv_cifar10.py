"""Frankle & Carbin (2019) Figure 5: Conv-2/4/6 on CIFAR-10 (conv 10%, Conv-6 15%; fc 20%; output 10% per level), the ticket against random reinitialisation, with early-stopping iteration. Needs CIFAR-10 via TFDS (--data_dir); --source=synthetic runs it on generated tensors for testing only.

Settings: recipes/conv_cifar10.toml (every field is a flag; --paper for the published settings).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("conv_cifar10")

if __name__ == "__main__":
    cli("conv_cifar10")
