"""Subclassed models, built by the user's code (`find_ticket(model=MyModel)`): every target masked by variable at a
path that is the same in every copy and process, IMP at the plan's counts with exact zeros, a population of copies
bit for bit the copies alone, a weights-only ticket, and one line wherever the network would have to be rebuilt
without that code."""
import numpy as np
import pytest

from helpers import assert_same_run
from tflottery import export_ticket, find_ticket
from tflottery.core.errors import ConfigError, RunError
from tflottery.core.keras_compat import keras
from tflottery.models.weights import weight_variables


class Block(keras.layers.Layer):
    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(width, activation="relu")
        self.outer = keras.layers.Dense(width)

    def call(self, x):
        return x + self.outer(self.inner(x))


class Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.stem = keras.layers.Dense(16, activation="relu")
        self.blocks = [Block(16), Block(16)]
        self.head = keras.layers.Dense(3)

    def call(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


X = np.random.default_rng(0).normal(size=(600, 12)).astype("float32")
Y = np.argmax(X[:, :3], axis=1)
PATHS = ["net/dense/kernel", "net/block/dense/kernel", "net/block/dense_1/kernel", "net/block_1/dense/kernel",
         "net/block_1/dense_1/kernel", "net/dense_1/kernel"]


def config(where, population=1, levels=2):
    return {"plan": {"levels": levels, "branches": ["reinit"], "population": population}, "runs_dir": str(where),
            "training": {"steps": "20it", "eval_every": "10it", "batch_size": 30, "verbose": False,
                         "jit_compile": False}}


def test_paths_inside_a_subclassed_model_are_the_same_in_every_copy():
    from tflottery.models.built import built_model

    first, second = built_model(Net, (12,)), built_model(Net, (12,))  # Keras numbers the second's layers on
    assert [k for k in weight_variables(first) if k.endswith("kernel")] == PATHS
    assert list(weight_variables(first)) == list(weight_variables(second))


def test_a_subclassed_model_finds_its_ticket_and_a_population_is_the_units_alone(tmp_path):
    alone = find_ticket(config(tmp_path / "alone"), model=Net, data=(X, Y))
    assert alone.path.name.startswith("net-arrays-")
    for level, dense, output in ((1, 0.8, 0.9), (2, 0.64, 0.81)):
        for branch in ("ticket", "reinit"):
            record = alone.replicate(0).load_level(level, branch)
            assert list(record.masks) == PATHS
            fractions = {k: float(m.mean()) for k, m in record.masks.items()}
            assert all(fractions[k] == pytest.approx(dense, abs=0.005) for k in PATHS[:-1])
            assert fractions[PATHS[-1]] == pytest.approx(output, abs=0.005)
            assert all(np.all(record.final[k][~m] == 0) for k, m in record.masks.items())
    grouped = find_ticket(config(tmp_path / "grouped", population=2), model=lambda: Net(), data=(X, Y))
    assert grouped.path.name == alone.path.name  # a class or a function building it: the same network
    assert_same_run(grouped.path, alone.path)


def test_what_would_rebuild_the_network_without_its_code_says_so_in_one_line(tmp_path):
    run = find_ticket(config(tmp_path, levels=1), model=Net, data=(X, Y))
    assert not (export_ticket(run, out=str(tmp_path / "ticket")) / "model.json").exists()  # weights only
    from tflottery.engine.run import open_run

    with pytest.raises(RunError, match=r"built by code \(.*Net\): only a process that has it"):
        open_run(run.path)
    with pytest.raises(ConfigError, match="executor='processes': the network is built by your code"):
        find_ticket(config(tmp_path, levels=1), model=Net, data=(X, Y), executor="processes",
                    executor_options={"processes": 2})
    from tflottery.core.errors import ModelError

    with pytest.raises(ModelError, match=r"subclassed tf_keras Model \(Net\).*find_ticket\(model=Net\)"):
        find_ticket(config(tmp_path, levels=1), model=Net(), data=(X, Y))  # an instance: it cannot be copied
    with pytest.raises(ConfigError, match="must build a model when called with no arguments"):
        find_ticket(config(tmp_path, levels=1), model=Block, data=(X, Y))
    with pytest.raises(ConfigError, match="built a list, not a tf_keras model"):
        find_ticket(config(tmp_path, levels=1), model=lambda: [Net()], data=(X, Y))


def test_a_subclassed_run_transfers_to_other_arrays_with_its_code_and_only_with_its_code(tmp_path):
    from tflottery import transfer

    run = find_ticket(config(tmp_path, levels=1), model=Net, data=(X, Y))
    other = np.random.default_rng(1).normal(size=(600, 12)).astype("float32")
    moved = transfer(run.path, data=(other, np.argmax(other[:, :3], axis=1)), model=Net, head="reuse_mask",
                     reinit=False, runs_dir=str(tmp_path))
    (branch,) = [b for b in run.replicate(0).branches(1) if b.startswith("transfer")]
    record, source = run.replicate(0).load_level(1, branch), run.replicate(0).load_level(1)
    assert moved.trained and list(record.masks) == PATHS
    assert all(np.array_equal(record.masks[k], source.masks[k]) for k in PATHS)  # the ticket's mask, every layer
    assert all(np.all(record.final[k][~m] == 0) for k, m in record.masks.items())
    assert record.metrics["data_source"] == moved.store.replicate(0).branch_data(1, branch)["source"] != \
        source.metrics["data_source"]  # trained on the other arrays

    class Shallow(Net):  # one block: another network
        def call(self, x):
            return self.head(self.blocks[0](self.stem(x)))

    with pytest.raises(ConfigError, match="builds another network than"):
        transfer(run.path, model=Shallow, head="reuse_mask", runs_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="queue=True: the network is built by your code"):
        transfer(run.path, model=Net, head="reuse_mask", queue=True, runs_dir=str(tmp_path))
