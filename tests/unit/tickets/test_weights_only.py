"""Weights-only tickets: a network a ticket cannot rebuild without running code (a subclassed model built by code, a
Lambda layer) exports its weights and masks by path, and `load_ticket(path, model=...)` fills the user's model with
them (the run's logits, masks kept in a fit); without a model, and with the wrong one, one line; crafted
weights-only tickets are refused."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
from helpers import resign  # noqa: E402
from test_built import Net, X, Y, config  # noqa: E402
from tflottery import convert, export_ticket, find_ticket, load_ticket  # noqa: E402
from tflottery.core.errors import TicketError  # noqa: E402
from tflottery.core.keras_compat import keras  # noqa: E402
from tflottery.models.weights import weight_variables  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    where = tmp_path_factory.mktemp("built")
    run = find_ticket(config(where / "runs", levels=1), model=Net, data=(X, Y))
    return run, export_ticket(run, out=str(where / "ticket"))


def lambda_model():
    inputs = keras.Input((12,))
    h = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="output")(keras.layers.Dense(8, name="fc")(h)), name="lam")


def test_a_subclassed_models_ticket_is_weights_only_and_fills_the_users_model(built):
    run, path = built
    assert sorted(p.name for p in Path(path).iterdir()) == ["masks.npz", "rewind.npz", "ticket.json", "weights.npz"]
    meta = json.loads((Path(path) / "ticket.json").read_text())
    assert meta["weights_only"]["inputs"] == [12] and "built by" in meta["weights_only"]["why"]
    with pytest.raises(TicketError, match=r"weights-only ticket \(net \(built by .*Net\).*load_ticket\(path, model="):
        load_ticket(path)
    filled = load_ticket(path, model=Net)
    assert np.abs(filled(X[:32]).numpy() - run.model(X[:32]).numpy()).max() < 1e-6
    masks = run.replicate(0).load_level(1).masks
    filled.compile(optimizer=keras.optimizers.Adam(0.05),
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    filled.fit(X, Y, batch_size=60, epochs=1, verbose=0)
    variables = weight_variables(filled)
    assert all(np.all(variables[k].numpy()[~m] == 0) for k, m in masks.items())
    with pytest.raises(TicketError, match="matches no layer of model"):
        load_ticket(path, model=keras.Sequential([keras.Input((12,)), keras.layers.Dense(3, name="other")]))
    with pytest.raises(TicketError, match="weights-only ticket"):
        convert(path, out=str(Path(path).parent / "tflite"))


def test_a_lambda_models_ticket_is_weights_only_and_loads_into_its_model(tmp_path):
    run = find_ticket(config(tmp_path / "runs", levels=1), model=lambda_model(), data=(X, Y))
    path = export_ticket(run, out=str(tmp_path / "ticket"))
    assert "double (Lambda)" in json.loads((Path(path) / "ticket.json").read_text())["weights_only"]["why"]
    filled = load_ticket(path, model=lambda_model())
    assert np.abs(filled(X[:32]).numpy() - run.model(X[:32]).numpy()).max() < 1e-6


def crafted(tmp_path, path, change):
    copy = tmp_path / "crafted"
    shutil.copytree(path, copy)
    meta = json.loads((copy / "ticket.json").read_text())
    change(meta, copy)
    (copy / "ticket.json").write_text(json.dumps(meta))
    resign(copy)
    return copy


def negative_inputs(meta, copy):
    meta["weights_only"]["inputs"] = [-12]


def lists_a_model(meta, copy):
    (copy / "model.json").write_text("{}")
    meta["files"]["model.json"] = "0" * 64


def no_reason(meta, copy):
    meta["weights_only"] = True


def mask_without_weights(meta, copy):
    from tflottery.core.files import npz_bytes

    with np.load(copy / "masks.npz") as f:
        masks = {k.replace("__", "/"): f[k] for k in f.files}
    masks["net/ghost/kernel"] = np.ones((2, 2), bool)
    (copy / "masks.npz").write_bytes(npz_bytes(masks))
    meta["pruned"] = sorted(masks)


@pytest.mark.parametrize("change, message", [
    (negative_inputs, "'weights_only' must say why and the input shape"),
    (lists_a_model, "weights-only and lists model.json"),
    (no_reason, "'weights_only' must say why"),
    (mask_without_weights, "ghost"),
])
def test_crafted_weights_only_tickets_are_refused(tmp_path, built, change, message):
    with pytest.raises(TicketError, match=message):
        load_ticket(crafted(tmp_path, built[1], change), model=Net)
