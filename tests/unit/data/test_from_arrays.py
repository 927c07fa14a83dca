"""A user's own arrays: checked in one line, named by their digest in the run's identity, trained through
find_ticket (features and token ids), resumed to the same bytes, and read back from the run's checked copy by
whatever loads data by name (open_run, a restart without the arrays, transfer and its worker)."""
import numpy as np
import pytest

from helpers import assert_same_run, kill_after, tiny_config
from tflottery import find_ticket
from tflottery.core.files import npz_bytes
from tflottery.core.errors import ConfigError, DamagedError, DataUnavailableError
from tflottery.core.keras_compat import keras
from tflottery.data import from_arrays
from tflottery.engine.run import open_run


def features(seed=0, n=1200, d=12):
    """A tabular problem a small network learns: the class is which of three projections is largest."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = np.argmax(x @ np.random.default_rng(99).normal(size=(d, 3)), axis=1)
    return x, y


def tabular_model():
    inputs = keras.Input((12,), name="features")
    x = keras.layers.Dense(64, activation="relu", name="fc1")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="output")(x), name="tabular")


def config(levels=1):
    c = tiny_config(levels=levels)
    c.training.steps, c.training.eval_every = "40it", "20it"
    return c


@pytest.mark.parametrize("train,message", [
    ((np.zeros((10, 3)), np.zeros(9, int)), "x holds 10 examples and y 9 labels"),
    ((np.zeros((10, 3)), np.zeros(10)), "y must be a 1-D array of integer class ids"),
    ((np.zeros((10, 3)), -np.ones(10, int)), "classes are numbered from 0"),
    ((np.full((10, 3), np.nan), np.zeros(10, int)), "x holds NaN or infinite values"),
    ((np.zeros(10), np.zeros(10, int)), "x must be a numeric array of examples"),
    ((np.array([["a"]] * 10), np.zeros(10, int)), "x must be a numeric array of examples"),
    (np.zeros((10, 3)), "train must be a pair"),
])
def test_bad_arrays_are_one_line(train, message):
    with pytest.raises(ConfigError, match=message):
        from_arrays(train=train)


def test_the_split_and_the_digest_depend_on_the_arrays_alone():
    x, y = features()
    a, b = from_arrays(train=(x, y)), from_arrays(train=(x.copy(), y.copy()))
    assert a.info["source"] == b.info["source"] and a.info["source"].startswith("arrays:")
    assert {k: len(v[1]) for k, v in a.arrays.items()} == {"train": 972, "test": 120, "validation": 108}
    assert all(np.array_equal(a.arrays[k][0], b.arrays[k][0]) for k in a.arrays)
    x[0, 0] += 1e-3
    assert from_arrays(train=(x, y)).info["source"] != a.info["source"]  # one value: other data
    assert a.divisor == 1.0 and from_arrays(train=((x * 0).astype(np.uint8), y)).divisor == 255.0
    with pytest.raises(ConfigError, match="give every split examples of one shape"):
        from_arrays(train=(x, y), test=(x[:, :5], y))


def test_arrays_are_checked_at_the_run_s_batch_size_not_a_default(in_tmp):
    from tflottery import plan_ticket

    x, y = features(n=60)
    small = config()
    small.training.batch_size = 8
    assert plan_ticket(small, model=tabular_model(), data=(x, y)).steps_per_epoch == 6  # 49 train: fewer than 60
    with pytest.raises(ConfigError, match="Only 49 training examples for batch_size=50"):
        small.training.batch_size = 50
        plan_ticket(small, model=tabular_model(), data=(x, y))


def test_a_tabular_model_trains_on_its_own_arrays_and_the_same_arrays_find_the_same_run(in_tmp):
    x, y = features()
    run = find_ticket(config(), model=tabular_model(), data=(x, y))
    assert run.path.name.startswith("tabular-arrays-") and run.config.data.source.startswith("arrays:")
    level = run.replicate(0).metrics(1)
    assert level["early_stop_test_accuracy"] > 0.6  # three classes: far above chance after 40 steps
    again = find_ticket(config(), model=tabular_model(), data=(x.copy(), y.copy()))
    assert again.path == run.path and again.trained == []  # the same arrays: the same, finished run
    other = find_ticket(config(levels=0), model=tabular_model(), data=features(seed=1))
    assert other.path != run.path
    stored = open_run(run.path).data  # the run's own copy, for workers, transfer and instability
    assert stored.info == run.data.info and stored.class_names == run.data.class_names
    assert all(np.array_equal(stored.arrays[k][i], run.data.arrays[k][i]) for k in run.data.arrays for i in (0, 1))
    resumed = find_ticket(run.config.to_dict(), model=tabular_model())  # no arrays passed: the run's copy
    assert resumed.path == run.path and resumed.trained == []


def test_a_transfer_to_other_arrays_is_queued_and_a_worker_trains_it_from_the_run_s_copies(in_tmp):
    from tflottery.api import run_worker as worker, transfer

    run = find_ticket(config(), model=tabular_model(), data=features())
    x, y = features(seed=1)
    queued = transfer(run.path, data=(x, y), reinit=False, queue=True)
    assert queued.trained == [] and len(list((run.path / "arrays").glob("*.npz"))) == 2
    done = worker(run.path, wait=0)
    branch = [b for b in run.replicate(0).branches(1) if b.startswith("transfer")]
    assert len(branch) == 1 and run.replicate(0).metrics(1, branch[0])["early_stop_test_accuracy"] > 0.6
    assert any(key[2] == branch[0] for key in done.trained)


def test_a_run_s_copy_of_the_arrays_is_checked_before_use(in_tmp):
    run = find_ticket(config(levels=0), model=tabular_model(), data=features())
    (copy,) = (run.path / "arrays").glob("*.npz")
    entries = dict(np.load(copy))
    entries["train_x"][0, 0] += 1  # one value, in a well-formed file (a flipped bit fails the zip's CRC)
    copy.write_bytes(npz_bytes(entries, compress=False))
    with pytest.raises(DamagedError, match="their digest differs"):
        open_run(run.path)
    import io
    import zipfile

    header = io.BytesIO()  # a header declaring 10**12 values the file does not hold
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 6, 10 ** 6)})
    crafted = io.BytesIO()
    with zipfile.ZipFile(crafted, "w") as archive:
        archive.writestr("train_x.npy", header.getvalue() + b"\0" * 64)
    copy.write_bytes(crafted.getvalue())
    with pytest.raises(DamagedError, match="do not hold"):
        open_run(run.path)
    copy.unlink()
    with pytest.raises(DataUnavailableError, match="pass them again"):
        open_run(run.path)


def test_a_token_id_model_keeps_its_ids_and_resumes_after_a_kill_to_the_same_bytes(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 50, size=(900, 8))
    labels = (tokens[:, 0] > 25).astype(np.int64)  # the first token decides

    def model():  # Embedding + MultiHeadAttention: both pruned, by variable
        inputs = keras.Input((8,), name="tokens")
        x = keras.layers.Embedding(50, 16, name="embedding")(inputs)
        x = keras.layers.MultiHeadAttention(2, 8, name="attention")(x, x)
        x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
        x = keras.layers.Dense(32, activation="relu", name="fc1")(x)
        return keras.Model(inputs, keras.layers.Dense(2, name="output")(x), name="tokens")

    def cfg(where):
        c = config(levels=2)
        c.runs_dir = str(where)
        return c

    whole = find_ticket(cfg(tmp_path / "whole"), model=model(), data=(tokens, labels))
    assert whole.data.divisor == 1.0  # ids reach the Embedding as they are
    masks = whole.replicate(0).load_level(2).masks
    assert {k: round(float(m.mean()), 2) for k, m in masks.items()} == {
        "embedding/embeddings": 0.64, "attention/query/kernel": 0.64, "attention/key/kernel": 0.64,
        "attention/value/kernel": 0.64, "attention/attention_output/kernel": 0.64, "fc1/kernel": 0.64,
        "output/kernel": 0.81}
    with pytest.raises(KeyboardInterrupt):
        find_ticket(cfg(tmp_path / "killed"), model=model(), data=(tokens, labels), callbacks=(kill_after(10),))
    resumed = find_ticket(cfg(tmp_path / "killed"), model=model(), data=(tokens, labels))
    assert resumed.path.name == whole.path.name
    assert_same_run(resumed.path, whole.path)
