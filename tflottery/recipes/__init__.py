"""Recipes: one module per experiment, settings in `recipes/<name>.toml`, run with `python -m`."""
