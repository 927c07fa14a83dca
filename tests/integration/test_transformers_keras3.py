"""Transformers through find on Keras 3: vit_tiny on TensorFlow, text_encoder on JAX, where a population of 3 is the
units alone, byte for byte (a file of its own, so that the suite's workers share the transformer tests)."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import assert_same_run

pytestmark = pytest.mark.slow
TASKS = {"vit_tiny": "mnist", "text_encoder": "query_count"}  # the MNIST sample: 500 test images, not 10,000

KERAS3 = r"""
import sys
import numpy as np
from tflottery import find_ticket, models
from tflottery.models.keras3 import translate

name, dataset, population, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
shape = (28, 28, 1) if name == "vit_tiny" else (24,)
data = {"dataset": dataset}
if dataset == "mnist":
    data.update(validation=400)
config = {"data": data, "plan": {"levels": 1, "branches": ["reinit"], "population": population}, "runs_dir": runs,
          "training": {"steps": "10it", "eval_every": "10it", "batch_size": 50, "verbose": False}}
own = None
if name == "text_encoder":  # the task's own generator at test size (its 10,000 test sequences cost a minute here)
    from tflottery.data.sources.generated import query_count
    own = query_count(3000, 1)
run = find_ticket(config, model=translate(models.build(name, shape, 10, 0), to=3), data=own)
record = run.replicate(0).load_level(1)
assert all(np.all(record.final[k][~m] == 0) for k, m in record.masks.items())
print(len(record.masks), run.path)
"""


@pytest.mark.parametrize("backend,model", [("tensorflow", "vit_tiny"), ("jax", "text_encoder")])
def test_a_keras3_transformer_trains_exactly_on_its_backend(tmp_path, backend, model):
    """Keras 3 on TensorFlow trains one unit at a time; on JAX a population of 3 is the units alone, byte for byte
    (measured for vit_tiny as well; the suite keeps one model per backend for time)."""
    if backend == "jax" and importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed: pip install 'tflottery[jax]'")
    paths = []
    for population in ((1, 3) if backend == "jax" else (1,)):
        done = subprocess.run([sys.executable, "-c", KERAS3, model, TASKS[model], str(population),
                               str(tmp_path / str(population))], capture_output=True, text=True, timeout=600,
                              env={**os.environ, "KERAS_BACKEND": backend})
        assert done.returncode == 0, done.stderr[-3000:]
        count, path = done.stdout.split()[-2:]
        assert int(count) == (14 if model == "vit_tiny" else 15)
        paths.append(Path(path))
    if len(paths) == 2:
        assert_same_run(paths[1], paths[0])
