"""The layerwise variant of the baselines recipe: every method at the ticket's per-layer counts.

Settings: recipes/baselines_layerwise.toml (every field is a flag; --paper for the published lengths).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("baselines_layerwise")

if __name__ == "__main__":
    cli("baselines_layerwise")
