"""Masks by variable: every layer kind the field uses is pruned by path (nested sublayers included), at its rate
kind; pruned weights stay exactly zero after every optimizer step; what is left dense is said, never skipped in
silence; a layer no rule covers is refused in one line, and a registry line makes it prunable."""
import json

import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_config
from tflottery import find_ticket
from tflottery.core.errors import ModelError
from tflottery.core.keras_compat import keras
from tflottery.models.weights import weight_variables
from tflottery.pruning import targets
from tflottery.pruning.wrap import get_masks, plan_inputs, prunable_kinds, set_masks, uncovered, wrap


def token_model():
    """Every sequence kind: Embedding, MultiHeadAttention (its four EinsumDense projections), EinsumDense,
    LSTM, GRU, Dense."""
    inputs = keras.Input((12,), dtype="int32")
    x = keras.layers.Embedding(40, 16, name="embed")(inputs)
    x = keras.layers.MultiHeadAttention(2, 8, name="mha")(x, x)
    x = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 12), name="proj")(x)
    x = keras.layers.LSTM(10, return_sequences=True, name="lstm")(x)
    x = keras.layers.GRU(6, name="gru")(x)
    return keras.Model(inputs, keras.layers.Dense(5, name="output")(x), name="tokens")


def image_model():
    """Every convolution kind: Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, name="depthwise")(x)
    x = keras.layers.SeparableConv2D(6, 3, name="separable")(x)
    x = keras.layers.Reshape((22, 22 * 6))(x)
    x = keras.layers.Conv1D(4, 3, name="conv1d")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="output")(x), name="images")


def test_every_layer_kind_is_found_by_path_with_its_rate_kind_in_model_order():
    assert prunable_kinds(token_model()) == {
        "embed/embeddings": "embedding",
        "mha/query/kernel": "attention", "mha/key/kernel": "attention", "mha/value/kernel": "attention",
        "mha/attention_output/kernel": "attention", "proj/kernel": "dense",
        "lstm/lstm_cell/kernel": "recurrent", "lstm/lstm_cell/recurrent_kernel": "recurrent",
        "gru/gru_cell/kernel": "recurrent", "gru/gru_cell/recurrent_kernel": "recurrent", "output/kernel": "dense"}
    assert prunable_kinds(image_model()) == {
        "conv/kernel": "conv", "depthwise/depthwise_kernel": "conv", "separable/depthwise_kernel": "conv",
        "separable/pointwise_kernel": "conv", "conv1d/kernel": "conv", "output/kernel": "dense"}
    inputs = plan_inputs(token_model())
    assert inputs["uncovered"] == {}  # biases and LayerNorm-like vectors never count
    everything = sum(int(np.prod(v.shape)) for v in token_model().trainable_weights)
    assert inputs["dense_weights"] == everything - sum(int(np.prod(s)) for s in inputs["shapes"].values())


class Gate(keras.layers.Layer):
    """A user's own layer with a weight matrix no registered kind describes."""

    def build(self, shape):
        self.w = self.add_weight(name="w", shape=(int(shape[-1]), 8))

    def call(self, x):
        return x @ self.w


def gate_model():
    inputs = keras.Input((784,))
    return keras.Model(inputs, keras.layers.Dense(10, name="output")(Gate(name="gate")(inputs)), name="gated")


def test_a_layer_no_rule_covers_is_refused_in_one_line_and_one_registry_line_makes_it_prunable(monkeypatch):
    assert uncovered(gate_model()) == {"gate": "Gate, 6,272 weights"}
    from tflottery.engine.plan import make_plan

    with pytest.raises(ModelError) as error:
        make_plan(tiny_config(levels=1), steps_per_epoch=10, **plan_inputs(gate_model()))
    assert "weights no rule prunes: gate (Gate, 6,272 weights)" in str(error.value)
    assert "--unpruned='[\"gate\"]'" in str(error.value) and "\n" not in str(error.value)
    import tflottery.extend

    monkeypatch.setattr(targets, "LAYER_KINDS", dict(targets.LAYER_KINDS))  # the registry as it was, after the test
    tflottery.extend.register_layer_kind(Gate, ("w",), "dense")
    assert prunable_kinds(gate_model()) == {"gate/w": "dense", "output/kernel": "dense"}
    assert uncovered(gate_model()) == {}
    with pytest.raises(Exception, match="the kind is one of dense, conv, embedding, recurrent, attention"):
        targets.register_layer_kind(Gate, ("w",), "matrix")


@pytest.mark.parametrize("optimizer", ["adam", "sgd_momentum", "adamw"])
@pytest.mark.parametrize("build", [token_model, image_model])
def test_pruned_weights_of_every_kind_stay_exactly_zero_after_every_step(build, optimizer):
    """In a user's own loop (`apply_gradients`) and in `fit`, under Adam, SGD with momentum and AdamW: the masks
    are wrappers for Dense/Conv kernels and constraints on every other target, applied after every update."""
    keras.utils.set_random_seed(0)
    model = wrap(build())
    masks = {k: np.random.default_rng(1).random(m.shape) < 0.5 for k, m in get_masks(model).items()}
    set_masks(model, masks)
    assert list(get_masks(model)) == list(prunable_kinds(model))
    opt = {"adam": lambda: keras.optimizers.Adam(0.05), "adamw": lambda: keras.optimizers.AdamW(0.05, weight_decay=0.1),
           "sgd_momentum": lambda: keras.optimizers.SGD(0.1, momentum=0.9)}[optimizer]()
    shape = model.input_shape[1:]
    x = np.random.default_rng(2).integers(0, 40, (32, *shape)) if model.inputs[0].dtype == tf.int32 else \
        np.random.default_rng(2).random((32, *shape)).astype(np.float32)
    y = np.random.default_rng(3).integers(0, model.output_shape[-1], 32)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = weight_variables(model)

    def zeros_kept():
        return all(np.all(variables[k].numpy()[~m] == 0) for k, m in masks.items())

    moved = {k: variables[k].numpy().copy() for k in masks}
    for _ in range(3):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        opt.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))
        assert zeros_kept()
    assert all(np.any(variables[k].numpy()[m] != moved[k][m]) for k, m in masks.items())  # the survivors train

    class Check(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            assert zeros_kept(), batch

    model.compile(optimizer=opt.__class__.from_config(opt.get_config()), loss=loss)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Check()])
    assert zeros_kept()


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


def test_left_dense_by_name_or_glob_it_trains_and_the_start_line_lists_it_with_counts(in_tmp, sample_data, capsys):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Reshape((28, 28))(inputs)
    x = keras.layers.GRU(8, name="gru")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="output")(x), name="gru_net")
    config = tiny_config(levels=1, unpruned=["*/recurrent_kernel"])
    config.training.verbose = True
    run = find_ticket(config, model=model, data=sample_data)
    assert "left dense: gru/gru_cell/recurrent_kernel (192 weights, --unpruned)" in capsys.readouterr().out
    record = run.replicate(0).load_level(1)
    assert record.masks["gru/gru_cell/recurrent_kernel"].all() and not record.masks["gru/gru_cell/kernel"].all()


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

def test_pruning_prune_chooses_targets_by_layer_path_or_glob_and_takes_some_out_out_loud(in_tmp, sample_data, capsys):
    from tflottery.core.errors import ConfigError
    from tflottery.pruning.targets import select

    layers = token_model().layers
    chosen, out = select(layers, ["mha", "*/bias", "!*/attention_output/*"])
    assert list(chosen) == ["mha/query/kernel", "mha/query/bias", "mha/key/kernel", "mha/key/bias",
                            "mha/value/kernel", "mha/value/bias", "lstm/lstm_cell/bias", "gru/gru_cell/bias",
                            "output/bias"]  # EinsumDense "proj" has no bias
    assert out == {"mha/attention_output/kernel": 256, "mha/attention_output/bias": 16}
    with pytest.raises(ConfigError, match="pruning.prune: 'lstm/kernel' names no trainable weight"):
        select(layers, ["lstm/kernel"])
    assert prunable_kinds(gate_model(), ["gate/w", "output"]) == {"gate/w": "dense", "output/kernel": "dense"}
    assert uncovered(gate_model(), ["!gate/w"]) == {}  # taken out by name: said, not refused

    config = tiny_config(levels=1, prune=["gate/w", "output"])
    config.training.verbose = True
    inputs = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten(name="flat")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, name="output")(Gate(name="gate")(flat)), name="gated")
    run = find_ticket(config, model=model, data=sample_data)
    masks = run.replicate(0).load_level(1).masks
    assert list(masks) == ["gate/w", "output/kernel"] and masks["gate/w"].mean() == pytest.approx(0.8, abs=1e-3)
    config = tiny_config(levels=1, prune=["!gate/w"])
    config.training.verbose = True
    find_ticket(config, model=model, data=sample_data)
    assert "left dense: gate/w (6,272 weights, --prune)" in capsys.readouterr().out
