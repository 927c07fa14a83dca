"""Task 1: find a ticket on one half of the MNIST training set (S1, all labels), retrain it on the other half (S2), and compare with the ticket found on S2 and with random reinitialisation.

Settings: recipes/task1.toml (every field is a flag; --paper for the published settings).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("task1")

if __name__ == "__main__":
    cli("task1")
