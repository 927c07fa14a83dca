"""Dynamic sparse training as Evci et al. 2020 ran it (ERK densities, 1x/2x/5x budgets) beside the IMP ticket.

Settings: recipes/dst.toml (every field is a flag; --paper for the published lengths).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("dst")

if __name__ == "__main__":
    cli("dst")
