"""Keras3IMP on a toy Keras 3 model (TensorFlow backend, in this process): the layout, the global strategy, the
.keras round trip of its masks, and clear refusals before any step."""
import keras
import numpy as np
import pytest

from tflottery import Keras3IMP
from tflottery.core.errors import ConfigError
from tflottery.models.keras3 import weight_variables as keras3_variables
from tflottery.pruning.keras3 import TicketMask, masks_of


def toy(constraint=None, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="fc1", kernel_constraint=constraint)(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="output")(hidden), name="toy")


def fit(model, imp, optimizer=None, steps=None):
    model.compile(optimizer or keras.optimizers.SGD(0.1, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    steps = steps or imp.total_steps()
    rng = np.random.default_rng(0)
    x, y = rng.random((4 * steps, 6)).astype("float32"), rng.integers(0, 3, 4 * steps)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[imp])


def test_global_pruning_in_a_keras3_fit_follows_the_global_plan_and_the_masks_save():
    model, imp = toy(), Keras3IMP(5, 2, pruning={"strategy": "global", "rate": 0.5}, rewind="2it")
    fit(model, imp)
    assert imp.total_steps() == 5 + 2 * 3 and [e["step"] for e in imp.events] == [5, 8]
    masks = imp.masks()
    assert sum(int(m.sum()) for m in masks.values()) == sum(imp.plan[2].values())  # one threshold over layers
    for name, mask in masks.items():
        assert not np.asarray(model.get_layer(name.split("/")[0]).kernel)[~mask].any()


def test_the_masks_round_trip_through_a_keras_file(tmp_path):
    model, imp = toy(), Keras3IMP(4, 1, pruning={"dense_rate": 0.5, "output_rate": 0.5})
    fit(model, imp)
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    saved, loaded = masks_of(model), masks_of(again)
    assert sorted(saved) == ["fc1/kernel", "output/kernel"]
    assert all(np.array_equal(saved[k], loaded[k]) for k in saved)


@pytest.mark.parametrize("case,message", [
    ("constraint", "has a kernel constraint \\(NonNeg\\).*remove that one"),
    ("steps_per_execution", "steps_per_execution=1"),
    ("schedule", "learning-rate schedule ExponentialDecay would restart"),
    ("again", "carries tflottery masks already"),
])
def test_a_fit_it_cannot_carry_out_is_refused_before_any_step(case, message):
    model = toy(keras.constraints.NonNeg() if case == "constraint" else None)
    imp = Keras3IMP(4, 1, rewind="2it" if case == "schedule" else "0it")
    optimizer = keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)) \
        if case == "schedule" else None
    if case == "again":
        fit(model, Keras3IMP(4, 1))
    model.compile(optimizer or "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=2 if case == "steps_per_execution" else 1)
    before = [np.asarray(v).copy() for v in model.weights]
    with pytest.raises(ConfigError, match=message):
        model.fit(np.zeros((8, 6), "float32"), np.zeros(8), batch_size=4, verbose=0, callbacks=[imp])
    assert all(np.array_equal(a, np.asarray(v)) for a, v in zip(before, model.weights))


@pytest.mark.parametrize("kwargs,message", [
    ({"rewind": "1ep"}, "give the rewind step in iterations"),
    ({"rewind": "4it"}, "rewind_step=4 must be before the end of a level"),
    ({"pruning": {"strategy": "early_bird"}}, "needs `tflottery find`"),
    ({"pruning": {"one_shot": True}}, "one-shot needs `tflottery find`"),
    ({"pruning": {"strategy": "global", "dense_rate": 0.5}}, "global does not use dense_rate"),
])
def test_bad_settings_are_refused_when_made(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Keras3IMP(4, 1, **kwargs)


def test_a_tf_keras_model_is_pointed_to_prune_imp():
    from tflottery.core.keras_compat import keras as tf_keras

    imp = Keras3IMP(4, 1)
    imp.set_model(tf_keras.Sequential([tf_keras.Input((6,)), tf_keras.layers.Dense(2)]))
    with pytest.raises(ConfigError, match="prune_imp with the Rewind callback"):
        imp.on_train_begin()


def test_ticket_mask_survives_its_config():
    mask = np.random.default_rng(1).random((5, 7)) > 0.5
    assert np.array_equal(TicketMask.from_config(TicketMask(mask).get_config()).mask, mask)


def test_keras3_imp_prunes_every_layer_kind_by_variable_and_keeps_zeros_after_every_step():
    """Embedding, MultiHeadAttention's projections, LSTM kernels: the same targets and paths as tf_keras, each
    under a TicketMask the optimizer applies after every update (AdamW: decay and all)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((10,), dtype="int32")
    x = keras.layers.Embedding(30, 8, name="embed")(inputs)
    x = keras.layers.MultiHeadAttention(2, 4, name="mha")(x, x)
    x = keras.layers.LSTM(6, name="lstm")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="output")(x), name="seq")
    imp = Keras3IMP(6, 2)
    seen = []

    class Check(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            masks = masks_of(self.model)
            variables = {k: np.asarray(v) for k, v in keras3_variables(self.model).items()}
            seen.append(len(masks))
            assert all(not variables[k][~m].any() for k, m in masks.items()), batch

    model.compile(keras.optimizers.AdamW(0.05, weight_decay=0.1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 30, (4 * imp.total_steps(), 10)), rng.integers(0, 3, 4 * imp.total_steps())
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[imp, Check()])
    masks = imp.masks()
    assert list(masks) == ["embed/embeddings", "mha/query/kernel", "mha/key/kernel", "mha/value/kernel",
                           "mha/attention_output/kernel", "lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel",
                           "output/kernel"]
    assert {k: int(m.sum()) for k, m in masks.items()} == imp.plan[2]
    assert max(seen) == 8 and len(seen) == imp.total_steps()
