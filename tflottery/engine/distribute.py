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


def threads_for_towers() -> str:
    """On a CPU, one thread per op and the cores running independent ops side by side: a population's
    towers are independent, and 15 LeNets train 2x faster so on 2 cores than with TensorFlow's default
    (benchmarks/population_speed.py). Results do not depend on it (tests/unit/engine/test_kernels.py).
    Only possible before TensorFlow starts its runtime; TF_NUM_INTRAOP_THREADS and
    TF_NUM_INTEROP_THREADS, where set, win. Returns what the threads are, for the banner."""
    if tf.config.list_physical_devices("GPU") or "TF_NUM_INTRAOP_THREADS" in os.environ \
            or "TF_NUM_INTEROP_THREADS" in os.environ:
        return "TensorFlow's"
    cores = os.cpu_count() or 1
    intra, inter = max(1, cores // 16), cores
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # TensorFlow is running already: its threads stay
        pass
    return (f"{tf.config.threading.get_intra_op_parallelism_threads() or 'auto'} per op, "
            f"{tf.config.threading.get_inter_op_parallelism_threads() or 'auto'} ops at once")


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
