"""The README's Python snippets run as written, with smaller numbers, each in a fresh interpreter.

A fresh interpreter is what a reader has: nothing imported before the snippet's own first line
(an attribute that works only because another module imported a subpackage first fails here).
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"


def snippet(heading: str, index: int = 0) -> str:
    text = README.read_text()
    section = text[text.index(heading):]
    return re.findall(r"```python\n(.*?)```", section, re.S)[index]


def run_fresh(code: str, cwd: Path, smaller: list, check: str) -> str:
    """Run `code` with each (as written, smaller, count) substituted, then `check`, in a new interpreter."""
    for written, small, count in smaller:
        assert code.count(written) == count, written  # a README edit that breaks the substitution fails here
        code = code.replace(written, small)
    env = {"TFLOTTERY_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    result = subprocess.run([sys.executable, "-c", code + "\n" + check], cwd=cwd, capture_output=True, text=True,
                            timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_your_model_your_data_example(tmp_path):
    out = run_fresh(snippet("## Your model, your data"), tmp_path, [
        ('"levels": 5', '"levels": 2', 1),
        ('"replicates": 3', '"replicates": 2', 1),
        ('"steps": "4ep"', '"steps": "20it"', 1),
        ("size=(5000, 16)", "size=(800, 16)", 1),
    ], "assert run.replicate(1).levels() == [0, 1, 2]\n"
       "masks = run.replicate(0).load_level(2).masks\n"
       "assert {'embed/embeddings', 'attention/query/kernel', 'output/kernel'} <= {k for k, m in masks.items() "
       "if not m.all()}, masks\n"
       "assert load_ticket(ticket)(tokens[:4].astype('float32')).shape == (4, 2)\n"
       "print('your model ran')")
    assert "your model ran" in out


def test_the_python_api_example(tmp_path):
    out = run_fresh(snippet("## Using it from Python"), tmp_path, [
        ('"dataset": "fashion_mnist"', '"dataset": "mnist"', 2),
        ('"levels": 15', '"levels": 2', 1),
        ("level=15", "level=2", 2),
        ('"steps": "3ep"', '"steps": "20it"', 1),
        ('"replicates": 3', '"replicates": 2', 1),
        ("end=200", "end=20", 1),
    ], "assert run.replicate(0).levels() == [0, 1, 2] and run.replicate(1).levels() == [0, 1, 2]\n"
       "assert report['files']['sparse']['ok'] and set(moved.branches) == {'rewind', 'reinit'}\n"
       "import os; assert os.path.isdir(ticket) and os.path.isdir('saved_tickets')\n"
       "print('example ran')")
    assert "example ran" in out


def test_the_own_fit_example(tmp_path):
    out = run_fresh(snippet("## Use it in your own training script"), tmp_path, [
        ('load(DataConfig(dataset="fashion_mnist"))', 'load(DataConfig(dataset="mnist"))', 1),
        ("level_steps=2748, levels=7", "level_steps=20, levels=2", 1),
        ("steps_per_epoch=2748, epochs=8", "steps_per_epoch=20, epochs=3", 1),
    ], "events = rewind.events\n"
       "assert [e['level'] for e in events] == [1, 2] and events[-1]['remaining'] < 0.7, events\n"
       "assert 'imp_remaining' in open('imp.csv').readline().split(',')\n"
       "assert tflottery.load_ticket(ticket).count_params() > 0\n"
       "print('own fit ran')")
    assert "own fit ran" in out


def test_the_keras3_own_fit_example(tmp_path):
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: pip install 'tflottery[jax]'")
    out = run_fresh(snippet("### In your own Keras 3 fit"), tmp_path, [
        ('load(DataConfig(dataset="fashion_mnist"))', 'load(DataConfig(dataset="mnist"))', 1),
        ("steps = 916", "steps = 20", 1),
        ("levels=7,", "levels=2,", 1),
        ("epochs=8,", "epochs=5,", 1),  # two more epochs than the plan: the callback stops the fit
    ], "assert keras.backend.backend() == 'jax' and imp.done == imp.total_steps() == 60, imp.done\n"
       "assert [(e['level'], round(e['remaining'], 3)) for e in imp.events] == [(1, 0.8), (2, 0.641)], imp.events\n"
       "assert tflottery.load_ticket(ticket).count_params() > 0\n"
       "print('keras 3 fit ran')")
    assert "keras 3 fit ran" in out


def test_the_numpy_forward_pass_of_a_ticket(tmp_path, tiny_run, sample_data):
    """The README's numpy forward pass of a ticket's arrays equals load_ticket's logits."""
    import numpy as np

    from tflottery import export_ticket, load_ticket

    ticket = export_ticket(tiny_run, 2, tmp_path / "my_ticket")
    images = sample_data.arrays["test"][0][:64].astype(np.float32) / 255.0
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "expected.npy", load_ticket(ticket).predict(images, verbose=0))
    out = run_fresh(snippet("**The arrays, for JAX, PyTorch or numpy.**"), tmp_path, [
        ('"saved_tickets/my_ticket"', repr(str(ticket)), 1)],
        "x, expected = np.load('images.npy'), np.load('expected.npy')\n"
        "np.testing.assert_allclose(forward(x), expected, rtol=1e-4, atol=1e-4)\n"
        "import sys; assert 'tensorflow' not in sys.modules\n"
        "print('numpy forward ran')")
    assert "numpy forward ran" in out
