"""Lottery tickets in a text transformer: text_encoder on the generated query_count task, rewinding to 0 and to an
early step, the ticket against reinit and random pruning over 3 replicates, and the instability barriers at both points.

Settings: recipes/text_query_count.toml (every field is a flag; --paper for 4 epochs a level).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("text_query_count")

if __name__ == "__main__":
    cli("text_query_count")
