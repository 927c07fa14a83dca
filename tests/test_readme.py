"""The README's Python example runs as written, with smaller numbers: it can never again fail for a reader."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SMALLER = [  # (as written, on small data, how often it occurs): a README edit that breaks these fails here
    ('"dataset": "fashion_mnist"', '"dataset": "mnist"', 2),
    ('"levels": 15', '"levels": 2', 1),
    ("level=15", "level=2", 2),
    ('"steps": "3ep"', '"steps": "20it"', 1),
    ("end=200", "end=20", 1),
]


def python_example() -> str:
    text = README.read_text()
    section = text[text.index("## Using it from Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_python_example_runs(in_tmp):
    code = python_example()
    for written, small, count in SMALLER:
        assert code.count(written) == count, written
        code = code.replace(written, small)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["run"].replicate(0).levels() == [0, 1, 2]
    assert namespace["report"]["files"]["sparse"]["ok"]
    assert (in_tmp / "saved_tickets").is_dir() and Path(namespace["ticket"]).is_dir()
    assert set(namespace["moved"].branches) == {"rewind", "reinit"}


OWN_FIT = [
    ('load(DataConfig(dataset="fashion_mnist"))', 'load(DataConfig(dataset="mnist"))', 1),
    ("level_steps=2748, levels=7", "level_steps=20, levels=2", 1),
    ("steps_per_epoch=2748, epochs=8", "steps_per_epoch=20, epochs=3", 1),
]


def test_the_readme_own_fit_example_runs(in_tmp):
    text = README.read_text()
    section = text[text.index("## Use it in your own training script"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    for written, small, count in OWN_FIT:
        assert code.count(written) == count, written
        code = code.replace(written, small)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    events = namespace["rewind"].events
    assert [e["level"] for e in events] == [1, 2] and events[-1]["remaining"] < 0.7
    assert "imp_remaining" in (in_tmp / "imp.csv").read_text().splitlines()[0].split(",")
    from tflottery import load_ticket

    model = load_ticket(namespace["ticket"])
    assert model.count_params() > 0
