"""Early-bird tickets (You et al. 2020) against IMP tickets at the same fractions of weights: accuracy and training steps.

Settings: recipes/early_bird.toml (every field is a flag; --paper for the published settings).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("early_bird")

if __name__ == "__main__":
    cli("early_bird")
