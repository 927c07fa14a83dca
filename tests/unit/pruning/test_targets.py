"""Masks by variable: every layer kind the field uses is pruned by path (nested sublayers included), at its rate
kind; pruned weights stay exactly zero after every optimizer step; what is left dense is said, never skipped in
silence; a layer no rule covers is refused in one line, and a registry line makes it prunable."""
import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_config
from layer_kinds import image_model, token_model
from tflottery import find_ticket
from tflottery.core.errors import ModelError
from tflottery.core.keras_compat import keras
from tflottery.models.weights import weight_variables
from tflottery.pruning import targets
from tflottery.pruning.wrap import get_masks, plan_inputs, prunable_kinds, set_masks, uncovered, wrap


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
