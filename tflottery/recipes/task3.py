"""Task 3: tickets found with Adam and with SGD on MNIST, each retrained with the other optimizer, compared with the ticket found natively with that optimizer and with random reinitialisation.

Settings: recipes/task3.toml (every field is a flag; --paper for the published settings).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("task3")

if __name__ == "__main__":
    cli("task3")
