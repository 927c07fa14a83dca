"""The contracts of the trainer and executor registries, checked for every registered kind: a kind added
with one line is held to them at once."""
import dataclasses
import json

import pytest

from tflottery.config import RunConfig
from tflottery.engine.executors import EXECUTORS, executor_kind, executor_options
from tflottery.engine.executors.base import Executor
from tflottery.engine.trainer import TRAINERS, Trainer, trainer_kind
from tflottery.engine.trainer.registry import BY_KERAS, trainer_name


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_every_trainer_kind_is_named_as_registered_and_adds_plain_data_to_a_run_identity(name):
    kind = trainer_kind(name)
    assert issubclass(kind, Trainer) and kind.name == name
    training = RunConfig().training
    training.keras, training.backend = next(k for k, v in BY_KERAS.items() if v == name), "jax"
    assert trainer_name(training) == name
    assert json.loads(json.dumps(kind.identity(training))) == kind.identity(training)
    assert json.loads(json.dumps(kind.options_of(training))) == kind.options_of(training)


def test_the_default_trainer_adds_nothing_to_a_run_identity():
    """tf_keras runs keep the names they had before trainers were kinds (pinned by the run-name tests)."""
    assert trainer_name(RunConfig().training) == "tf_keras" and trainer_kind("tf_keras").identity(None) == {}


def test_a_trainer_rebuilds_from_its_payload_in_another_process():
    from tflottery.core.keras_compat import keras

    inputs = keras.Input((4,))
    base = keras.Model(inputs, keras.layers.Dense(3, name="out")(keras.layers.Dense(5, name="hidden")(inputs)))
    trainer = trainer_kind("tf_keras")(base, ["hidden", "out"], jit=False, capacity=2)
    payload = json.loads(json.dumps(trainer.payload()))  # plain data: it travels
    again = Trainer.from_payload(keras.models.model_from_json(base.to_json()), payload, 2)
    assert type(again) is type(trainer) and again.payload() == trainer.payload() and again.prune == ["hidden", "out"]


@pytest.mark.parametrize("name", sorted(EXECUTORS))
def test_every_executor_kind_has_typed_options_with_defaults(name):
    kind = executor_kind(name)
    assert issubclass(kind, Executor) and kind.name == name
    assert dataclasses.is_dataclass(kind.Options) and dataclasses.asdict(kind.Options()) is not None
    if name == "ray":
        pytest.importorskip("ray")
    assert executor_options(name, {}) == kind.Options()


def test_a_ray_address_where_nothing_listens_is_refused_in_one_line_within_the_bound():
    """Ray itself waits minutes for a head that is not there (and ignores SIGINT meanwhile); the check is a TCP
    connect bounded by --executor.connect_timeout, made before any work."""
    import socket
    import time

    pytest.importorskip("ray")
    from tflottery.core.errors import ConfigError, RunError
    from tflottery.engine.executors import check_executor

    with socket.socket() as probe:  # a port nothing listens on: bound, then closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(RunError, match=f"nothing answers at 127.0.0.1:{port} within 5 s"):
        check_executor("ray", {"address": f"127.0.0.1:{port}", "connect_timeout": 5})
    assert time.monotonic() - start < 10
    with pytest.raises(ConfigError, match="connect_timeout=0"):
        check_executor("ray", {"address": "auto", "connect_timeout": 0})
    with pytest.raises(ConfigError, match="give host:port"):
        check_executor("ray", {"address": "headnode"})
