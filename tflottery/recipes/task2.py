"""Task 2: find a ticket on MNIST labels 0-4, retrain it on labels 5-9 (labels remapped to 0-4, a fresh unpruned output layer as in Morcos et al. 2019), and compare with the ticket IMP finds on labels 5-9 and with random reinitialisation of the transferred mask.

Settings: recipes/task2.toml (every field is a flag; --paper for the published settings).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("task2")

if __name__ == "__main__":
    cli("task2")
