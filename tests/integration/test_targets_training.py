"""Masks by variable in training runs (the slow tier: each trains a sequence model for real): an LSTM model's
recurrent kernels pruned at the planned counts and said so, and `prune_imp` in a user's own fit pruning every kind
to the plan and resuming from a checkpoint."""
import json

import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_config
from layer_kinds import token_model
from tflottery import find_ticket
from tflottery.core.keras_compat import keras
from tflottery.pruning.wrap import prunable_kinds

pytestmark = pytest.mark.slow


def test_an_lstm_model_prunes_its_recurrent_kernels_at_the_planned_counts_and_says_so(in_tmp, sample_data, capsys):
    """The model that 0.3 reported at 90% remaining while 96% of its kernels stayed dense."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Reshape((28, 28))(inputs)
    x = keras.layers.LSTM(16, name="lstm")(x)
    x = keras.layers.LayerNormalization(name="norm")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="output")(x), name="lstm_net")
    config = tiny_config(levels=2, population=2, branches=["reinit"])
    config.training.verbose = True
    run = find_ticket(config, model=model, data=sample_data)
    out = capsys.readouterr().out
    assert "prunes 3 variables (recurrent 2,816, dense 160 weights)" in out
    assert "(64.9% remaining at the last, 66.1% of all weights)" in out
    for level, kept in ((1, {"lstm/lstm_cell/kernel": 1434, "lstm/lstm_cell/recurrent_kernel": 819,
                             "output/kernel": 144}),
                        (2, {"lstm/lstm_cell/kernel": 1147, "lstm/lstm_cell/recurrent_kernel": 655,
                             "output/kernel": 130})):
        for branch in ("ticket", "reinit"):
            record = run.replicate(0).load_level(level, branch)
            assert {k: int(m.sum()) for k, m in record.masks.items()} == kept
            assert all(np.all(record.final[k][~m] == 0) for k, m in record.masks.items())
            assert record.metrics["remaining"] == pytest.approx(sum(kept.values()) / (1792 + 1024 + 160))
    for row in run.summary():  # of every trainable weight (all of this model's are): a count of the arrays
        record = run.replicate(row["replicate"]).load_level(row["level"], row["branch"])
        kept = sum(int(m.sum()) for m in record.masks.values()) + sum(
            v.size for k, v in record.final.items() if k not in record.masks)
        assert row["remaining_of_all"] == pytest.approx(kept / sum(v.size for v in record.final.values()), abs=1e-12)
    last = [r for r in run.summary() if r["level"] == 2 and r["branch"] == "ticket"][0]
    from tflottery import export_ticket
    from tflottery.api import write_verdict

    ticket = json.loads((export_ticket(run, out="t") / "ticket.json").read_text())
    assert ticket["weights"]["remaining_of_all"] == pytest.approx(last["remaining_of_all"], abs=1e-12)
    write_verdict(run.store)
    assert f"| 2 | 64.9 ({100 * last['remaining_of_all']:.1f}) | ticket |" in (run.path / "report.md").read_text()
    assert "remaining_of_all" in (run.path / "results.csv").read_text().splitlines()[0]


def test_prune_imp_in_your_own_fit_prunes_every_kind_to_the_plan_and_resumes_from_a_checkpoint(tmp_path):
    """Embedding, attention, EinsumDense and recurrent kernels in a user's own fit: each level's mask at the plan's
    exact count per variable, zeros after every step, and a fit killed inside level 1 and reloaded from a saved
    model (which carries no VariableMask) continues to the uninterrupted fit's masks and weights."""
    from tflottery import Rewind, imp_steps, prune_imp
    from tflottery.config import PruningConfig
    from tflottery.models.weights import get_weights
    from tflottery.pruning.resolve import bind
    from tflottery.pruning.wrap import kernel_shapes

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 40, (80, 12)), rng.integers(0, 5, 80)
    init = token_model().get_weights()
    per_epoch, epochs = 2, 5

    def fresh():
        base = token_model()
        base.set_weights(init)
        model = prune_imp(base, level_steps=4, levels=2, rewind="1it")
        model.compile(keras.optimizers.AdamW(0.01, weight_decay=0.1),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    class Zeros(keras.callbacks.Callback):
        def __init__(self, rewind):
            super().__init__()
            self.rewind, self.kept = rewind, []

        def on_train_batch_end(self, batch, logs=None):
            weights = get_weights(self.model)
            self.kept.append(all(np.all(weights[k][~m] == 0) for k, m in self.rewind.masks().items()))

    def fit(model, rewind, start=0, end=epochs):
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).skip(start * per_epoch)
        zeros = Zeros(rewind)
        model.fit(data, initial_epoch=start, epochs=end, steps_per_epoch=per_epoch, verbose=0,
                  callbacks=[rewind, zeros])
        return zeros.kept

    whole, whole_rewind = fresh(), Rewind("1it")
    assert imp_steps(whole) == per_epoch * epochs
    assert all(fit(whole, whole_rewind)) and len(whole_rewind.events) == 2
    masks = whole_rewind.masks()
    assert set(masks) == set(prunable_kinds(token_model()))  # every kind masked, none left dense in silence
    model = token_model()
    strategy = bind(PruningConfig(), prunable_kinds(model), kernel_shapes(model))
    assert {k: int(m.sum()) for k, m in masks.items()} == strategy.plan(2)[2]

    first, state = fresh(), tmp_path / "state"
    fit(first, Rewind("1it", state=state), end=3)
    first.save(tmp_path / "checkpoint.keras")
    again = keras.models.load_model(tmp_path / "checkpoint.keras")
    rewind = Rewind("1it", state=state)
    assert all(fit(again, rewind, start=3))
    assert rewind.events == whole_rewind.events
    assert {k: m.tolist() for k, m in rewind.masks().items()} == {k: m.tolist() for k, m in masks.items()}
    final, expected = get_weights(again), get_weights(whole)
    assert all(np.array_equal(final[k], expected[k]) for k in expected)
