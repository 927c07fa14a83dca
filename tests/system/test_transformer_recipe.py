"""The transformer recipes' kind at tiny size (a file of its own, so that the suite's workers share the recipes)."""
from pathlib import Path

import pytest

from tflottery.recipes.common import run_recipe

pytestmark = pytest.mark.slow


def test_transformer_recipe_at_tiny_size(in_tmp):
    """The `rewinds` kind (the transformer recipes): an IMP run per rewind point with its baselines and verdict,
    then the barrier of the dense network and of the subnetwork at each point."""
    results = run_recipe("vit_fashion_mnist", verbose=False, levels=1, replicates=1, steps="6it", eval_every="6it",
                         warmup="0it", validation=300, rewinds=["0it", "3it"], sparse_level=1, copies=2, alphas=3,
                         dataset="mnist")  # the embedded sample: its 500 test images, not 10,000, evaluated per unit
    out = Path(results["output"])
    assert set(results["rewinds"]) == {"0it", "3it"} and (out / "report.md").exists()
    for point in ("0it", "3it"):
        assert (out / f"rewind_{point}" / "report.md").exists()
        assert [row["level"] for row in results["rewinds"][point]["table"]] == [0, 1]
    assert [(r["network"], r["rewind_step"]) for r in results["instability"]] == [
        ("dense", 0), ("dense", 3), ("IMP level 1", 0), ("IMP level 1", 3)]
    assert "| dense | 100.0 | 0 |" in (out / "report.md").read_text()
