"""Instability analysis (Frankle et al. 2020): linear mode connectivity of LeNet-300-100 and its IMP subnetworks; --paper: ResNet-20 on CIFAR-10.

Settings: recipes/instability.toml (every field is a flag; --paper for the published settings).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("instability")

if __name__ == "__main__":
    cli("instability")
