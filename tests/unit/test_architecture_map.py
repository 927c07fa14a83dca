"""The README's architecture map is the code's: packages in floor order, their modules, every registry's kinds."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs"))
sys.path.insert(0, str(Path(__file__).parent))

import architecture  # noqa: E402


def test_the_readmes_architecture_map_is_generated_from_the_code():
    assert architecture.readme_map((ROOT / "README.md").read_text()) == architecture.architecture_map(), (
        "the README's map is stale: run `python docs/architecture.py --write`")


def test_the_map_follows_the_floors_of_the_import_test():
    from test_import_graph import FLOORS

    order = architecture.ORDER
    assert set(order) == set(FLOORS) and [FLOORS[n] for n in order] == sorted(FLOORS[n] for n in order)
