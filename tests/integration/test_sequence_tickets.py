"""Tickets of sequence models (Embedding, MultiHeadAttention, LSTM, GRU: masks by variable path) export, rebuild
from the allowlist with the trained logits, keep every mask in a fit after loading, and crafted ones of these
layer kinds are refused: more attention than the budget, shapes that disagree with the arrays, code in a config."""
import json
import shutil

import numpy as np
import pytest

from helpers import resign
from tflottery import export_ticket, find_ticket, load_ticket
from tflottery.core.errors import TicketError
from tflottery.core.keras_compat import keras
from tflottery.models.weights import weight_variables

pytestmark = pytest.mark.slow

TOKENS = np.random.default_rng(0).integers(1, 60, size=(600, 10))
LABELS = (TOKENS[:, :3].sum(axis=1) > 90).astype(np.int64)


def sequence_model():
    inputs = keras.Input((10,), dtype="int32")
    x = keras.layers.Embedding(60, 16, name="embed")(inputs)
    x = keras.layers.MultiHeadAttention(2, 8, name="mha")(x, x)
    x = keras.layers.LSTM(12, return_sequences=True, name="lstm")(x)
    x = keras.layers.GRU(6, name="gru")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="output")(x), name="seq")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    where = tmp_path_factory.mktemp("seq")
    config = {"plan": {"levels": 2}, "runs_dir": str(where / "runs"),
              "training": {"steps": "20it", "eval_every": "20it", "batch_size": 40, "verbose": False,
                           "jit_compile": False}}
    run = find_ticket(config, model=sequence_model(), data=(TOKENS, LABELS))
    return run, export_ticket(run, out=str(where / "ticket"))


def test_a_sequence_ticket_rebuilds_with_the_trained_logits_and_keeps_its_masks_in_a_fit(exported):
    run, path = exported
    record = run.replicate(0).load_level(2)
    reference = sequence_model()
    from tflottery.models.weights import set_weights

    set_weights(reference, record.final)
    ticket = load_ticket(path)
    assert np.abs(ticket(TOKENS[:16]).numpy() - reference(TOKENS[:16]).numpy()).max() < 1e-6
    assert {k for k, m in record.masks.items() if not m.all()} >= {
        "embed/embeddings", "mha/query/kernel", "lstm/lstm_cell/recurrent_kernel", "gru/gru_cell/kernel"}
    ticket.compile(optimizer=keras.optimizers.Adam(0.05),
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ticket.fit(TOKENS, LABELS, batch_size=60, epochs=1, verbose=0)
    variables = weight_variables(ticket)
    for name, mask in record.masks.items():
        assert np.all(variables[name].numpy()[~mask] == 0), name


def crafted(tmp_path, path, change):
    copy = tmp_path / "crafted"
    shutil.copytree(path, copy)
    config = json.loads((copy / "model.json").read_text())
    change({layer["config"]["name"]: layer for layer in config["config"]["layers"]})
    (copy / "model.json").write_text(json.dumps(config))
    resign(copy)
    return copy


def longer_inputs(layers):
    for layer in layers.values():
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_input_shape"] = [None, 200_000]


def more_units(layers):
    layers["lstm"]["config"]["units"] = 13


def code_in_an_activation(layers):
    layers["gru"]["config"]["activation"] = {"class_name": "Lambda", "config": {"function": "print"}}


def unknown_cell(layers):
    layers["mha"]["class_name"] = "MyAttention"


@pytest.mark.parametrize("change, message", [
    (longer_inputs, r"attention layer 'mha' would compute 80,000,000,000 scores per example"),
    (more_units, r"declares more weights than weights.npz holds|lstm"),
    (code_in_an_activation, r"carries code"),
    (unknown_cell, r"'MyAttention' is not a built-in Keras class"),
])
def test_crafted_sequence_tickets_are_refused(tmp_path, exported, change, message):
    with pytest.raises(TicketError, match=message):
        load_ticket(crafted(tmp_path, exported[1], change))


def test_sequence_tickets_convert_and_say_what_litert_s_sparse_kernels_cover(tmp_path, exported):
    """Recurrent layers convert at a fixed batch of 1 (an open batch lowers an LSTM to TensorList ops LiteRT's
    builtins lack); every file is verified in LiteRT on the user's own inputs (--representative: token ids, used as
    training used them); int8 of a GRU, which crashes TFLite's converter, is refused before it starts."""
    from tflottery import convert
    from tflottery.core.errors import ConversionError

    representative = tmp_path / "tokens.npz"
    np.savez(representative, x=TOKENS[:200], y=LABELS[:200])
    with pytest.raises(ConversionError, match="crashes .* quantizing GRU layers to int8: convert with --modes"):
        convert(exported[1], out=str(tmp_path / "gru"), representative=str(representative))

    inputs = keras.Input((10,), dtype="int32")
    x = keras.layers.Embedding(60, 16, name="embed")(inputs)
    x = keras.layers.MultiHeadAttention(2, 8, name="mha")(x, x)
    x = keras.layers.LSTM(12, name="lstm")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="output")(x), name="lstm_seq")
    config = {"plan": {"levels": 1}, "runs_dir": str(tmp_path / "runs"),
              "training": {"steps": "20it", "eval_every": "20it", "batch_size": 40, "verbose": False,
                           "jit_compile": False}}
    ticket = export_ticket(find_ticket(config, model=model, data=(TOKENS, LABELS)), out=str(tmp_path / "lstm"))
    report = convert(ticket, out=str(tmp_path / "lstm_tflite"), representative=str(representative))
    assert set(report["files"]) == {"float", "sparse", "int8"}
    assert all(record["ok"] for record in report["files"].values()), report["files"]
    assert report["files"]["float"]["top1_agreement"] == 1.0
    assert "mha/query/kernel" in report["sparse_kernels_cover"] and report["batch"].startswith("fixed at 1")
