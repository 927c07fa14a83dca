"""Baselines beside the IMP ticket: pruning at initialisation with its ablations, and dynamic sparse training.

Settings: recipes/baselines.toml (every field is a flag; --paper for the published lengths).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("baselines")

if __name__ == "__main__":
    cli("baselines")
