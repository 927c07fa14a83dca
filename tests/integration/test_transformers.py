"""Transformers through find on tf_keras: vit_tiny on the MNIST sample and text_encoder on the generated query_count
task (at test size): exact zeros in every pruned variable, a population byte for byte the units alone, a kill resumed to the same
bytes, a ticket that rebuilds with the trained weights and converts to a LiteRT file that agrees with Keras (Keras 3:
test_transformers_keras3.py)."""
import numpy as np
import pytest

from helpers import assert_same_run, kill_after, zeros_outside
from tflottery import convert, export_ticket, find_ticket, load_ticket
from tflottery.data.sources.generated import query_count

pytestmark = pytest.mark.slow
TASKS = {"vit_tiny": {"dataset": "mnist", "validation": 400},  # the embedded sample: 500 test images, not 10,000
         "text_encoder": {"dataset": "query_count"}}
TEXT = query_count(3000, 1)  # the task's own generator at test size (its 10,000 test sequences cost a minute here)


def find(model, where, population=1, **kwargs):
    return find_ticket(config(model, where, population), data=TEXT if model == "text_encoder" else None, **kwargs)


def config(model, where, population=1):
    return {"model": {"name": model}, "data": TASKS[model], "runs_dir": str(where),
            "plan": {"levels": 2, "branches": ["reinit"], "population": population},
            "training": {"steps": "10it", "eval_every": "10it", "batch_size": 50, "verbose": False}}


@pytest.mark.parametrize("model", ["vit_tiny", "text_encoder"])
def test_a_transformer_finds_tickets_exactly_and_ships_them(tmp_path, model):
    """vit_tiny checks the population and the LiteRT file, text_encoder the kill (the suite's time: each property
    was measured on both models)."""
    alone = find(model, tmp_path / "alone")
    for level in (1, 2):
        for branch in ("ticket", "reinit"):
            record = alone.replicate(0).load_level(level, branch)
            assert zeros_outside(record.final, record.masks), (level, branch)
            attention = [k for k in record.masks if "attention/" in k]
            assert len(attention) == 8 and all(abs(float(record.masks[k].mean()) - 0.8 ** level) < 0.01
                                               for k in attention)
    if model == "vit_tiny":
        assert_same_run(find(model, tmp_path / "grouped", population=3).path, alone.path)
    else:
        with pytest.raises(KeyboardInterrupt):
            find(model, tmp_path / "killed", callbacks=(kill_after(3),))
        assert_same_run(find(model, tmp_path / "killed").path, alone.path)

    ticket = export_ticket(alone, out=str(tmp_path / "ticket"))
    from tflottery.models import get_weights

    rebuilt = get_weights(load_ticket(ticket))
    final = alone.replicate(0).load_level(2).final
    assert all(np.array_equal(rebuilt[k], final[k]) for k in final)
    if model == "vit_tiny":
        report = convert(ticket, modes=["float"], out=tmp_path / "tflite")
        assert report["files"]["float"]["ok"] and report["files"]["float"]["top1_agreement"] >= 0.95, report
