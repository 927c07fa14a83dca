"""tf.distribute strategies, the worker's place in a cluster, and mixed-precision policies."""
from __future__ import annotations

import json
import os
from contextlib import contextmanager

import tensorflow as tf

from tflottery.config import TrainingConfig
from tflottery.core.errors import ConfigError
from tflottery.core.keras_compat import keras


def make_strategy(config: TrainingConfig) -> "tf.distribute.Strategy":
    """The tf.distribute strategy a run trains under. Create it before any other TensorFlow op."""
    if config.distribute == "mirrored":
        return tf.distribute.MirroredStrategy()
    if config.distribute == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("training.distribute=multi_worker needs TF_CONFIG naming the cluster and this "
                              "worker's task, e.g. {\"cluster\": {\"worker\": [\"host1:2222\", \"host2:2222\"]}, "
                              "\"task\": {\"type\": \"worker\", \"index\": 0}}.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def worker_index() -> int:
    """This process's index among the workers of TF_CONFIG (0, the chief, when there is none)."""
    try:
        task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    except json.JSONDecodeError:
        raise ConfigError("TF_CONFIG is not valid JSON: see the scaling section of the README.") from None
    return 0 if task.get("type", "worker") == "chief" else int(task.get("index", 0))


def is_chief(strategy: "tf.distribute.Strategy") -> bool:
    return worker_index() == 0 or strategy.num_replicas_in_sync == 1


@contextmanager
def precision_policy(name: "str | None"):
    """Build models under a mixed-precision policy; weights and masks stay float32, so masks stay exact."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name or "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
