"""A ticket born deployable: block IMP, then TFLite files verified and timed in LiteRT under both resolvers.

Settings: recipes/deploy.toml (every field is a flag; --paper for the published settings).
"""
from tflottery.recipes.common import cli, main_for

main = main_for("deploy")

if __name__ == "__main__":
    cli("deploy")
