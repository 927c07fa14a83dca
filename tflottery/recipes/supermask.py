"""Supermasks (Zhou et al. 2019; Ramanujan et al. 2020): masks on untrained weights at every IMP level, and masks learned on frozen weights (edge-popup).

Settings: recipes/supermask.toml (every field is a flag; --paper for the published settings).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("supermask")

if __name__ == "__main__":
    cli("supermask")
