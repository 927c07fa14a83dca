"""Models built by the user's code: a subclassed tf_keras model (or any model) from a builder, never from pickled code.

tfmot cannot wrap a subclassed model (its issue #155), and a subclassed model has no config to clone it
from. tflottery asks for the code that builds it instead: `find_ticket(model=MyModel)` or
`model=lambda: MyModel(width=64)`. The run's network is a `BuiltModel`: a Functional model over one
instance, called on the data's inputs; every copy the engine needs (a tower of a population, a fresh
initialisation) is a new instance from the builder. Every target is masked by variable
(`tflottery.pruning.wrap.VariableMask`), named by its path inside the instance, the same in every copy and
every process (`weights.child_names`).

The run's identity holds a description of the network (the builder's name, the inputs, every variable's
path, shape and dtype), not its code: change the code so that the variables change, and it is another run.
A run of a built model lives in the process that has the code: its directory says so, and whatever would
rebuild the network elsewhere (workers, transfer, a ticket that rebuilds itself) says so in one line.
"""
from __future__ import annotations

import json
from typing import Callable

from tflottery.core.errors import ConfigError, ModelError
from tflottery.core.keras_compat import keras
from tflottery.core.seeds import derive_seed
from tflottery.models.weights import get_weights, weight_variables

KIND = "BuiltByCode"  # the class_name of a built model's description in model.json


def is_builder(model) -> bool:
    """Whether `model` is code that builds a model (a class or a function), not a model."""
    keras3_instance = hasattr(model, "stateless_call") and not isinstance(model, type)
    return callable(model) and not isinstance(model, keras.layers.Layer) and not keras3_instance


def by_code(model) -> bool:
    """Whether the run's network is built by the user's code (it lives in the process that has the code)."""
    return isinstance(model, (BuiltModel, Keras3Network))


def builder_name(builder: Callable) -> str:
    return f"{getattr(builder, '__module__', '?')}.{getattr(builder, '__qualname__', type(builder).__name__)}"


class BuiltModel(keras.Model):
    """The run's network when the user's code builds it: one instance from `builder`, called on `input_shape`."""

    def __init__(self, builder: Callable, input_shape: tuple, name: str, instance=None):
        instance = instance if instance is not None else make_instance(builder, name)
        inputs = keras.Input(tuple(input_shape), name="inputs")
        super().__init__(inputs, instance(inputs), name=name)
        object.__setattr__(self, "builder", builder)
        object.__setattr__(self, "network_class", builder_name(type(instance)))
        object.__setattr__(self, "instance_input_shape", tuple(input_shape))

    def fresh(self, name: "str | None" = None) -> keras.Model:
        """A new instance from the builder, named `name` (default: the run's), not yet called."""
        return make_instance(self.builder, name or self.name)

    def copy(self) -> "BuiltModel":
        """Another network of the same code (fresh weights; no variable shared)."""
        return BuiltModel(self.builder, self.instance_input_shape, self.name)

    def description(self) -> dict:
        return {"class_name": KIND, "config": {
            "name": self.name, "builder": self.network_class, "inputs": list(self.instance_input_shape),
            "outputs": int(self.output_shape[-1]),
            "weights": [[k, [int(d) for d in v.shape], v.dtype.name] for k, v in weight_variables(self).items()]}}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.description(), sort_keys=True)

    def get_config(self):
        raise ModelError(f"Model {self.name!r} is built by code ({builder_name(self.builder)}): it has no config; "
                         "tflottery rebuilds it from that code in this process only.")


def clone(model: keras.Model) -> keras.Model:
    """A copy of `model`'s network with variables of its own: from its config, or from its code when built by code."""
    return model.copy() if isinstance(model, BuiltModel) else keras.models.clone_model(model)


def make_instance(builder: Callable, name: str) -> keras.Model:
    """`builder()`, checked to be a tf_keras model, named `name`."""
    try:
        instance = builder()
    except TypeError as error:
        raise ConfigError(f"model={builder_name(builder)} must build a model when called with no arguments "
                          f"({error}): pass a class, or a function such as `lambda: MyModel(width=64)`.") from None
    if not isinstance(instance, keras.Model):
        raise ConfigError(f"model={builder_name(builder)} built a {type(instance).__name__}, not a tf_keras model: "
                          "pass the class of your keras.Model, or a function that returns one.")
    instance._name = name
    return instance


def built_model(builder: Callable, input_shape: tuple, name: "str | None" = None) -> BuiltModel:
    """The run's network of `builder` on inputs of `input_shape` (named after the instance, or `name`)."""
    instance = make_instance(builder, "probe")
    if isinstance(instance, (keras.Sequential,)) or getattr(instance, "_is_graph_network", False):
        return instance  # a Functional or Sequential model: the engine clones it from its config, as always
    from tflottery.models.weights import _snake

    name = name or _snake(type(instance).__name__)  # a class or a function building it: one network, one name
    instance._name = name
    return BuiltModel(builder, input_shape, name, instance)


def fresh_built_weights(model: BuiltModel, seed: int) -> dict:
    """{path: array} of a new instance initialised under `seed` (its initialisers draw from the seeded global
    generator, in the order the code creates them: the same seed, the same weights, in any process)."""
    keras.utils.set_random_seed(derive_seed(seed, 0, None, model.name, "built"))
    return get_weights(model.copy())


class Keras3Network:
    """The run's network when the user's code builds a Keras 3 model (a subclassed one): trained by the Keras 3
    trainer on a fresh instance from `builder`, addressed by variable path as tickets hold Keras 3 weights
    (`tflottery.models.keras3.weight_variables`, top-level layers named by their place: `stable_names`). It
    answers what the engine asks of a network (its inputs, outputs, targets, description, fresh weights) without
    a tf_keras twin: nothing of tf_keras trains it."""

    def __init__(self, builder: Callable, input_shape: tuple, name: "str | None" = None, instance=None):
        from tflottery.models.weights import _snake

        self.builder, self.instance_input_shape = builder, tuple(int(d) for d in input_shape)
        self.probe = self.fresh(instance)
        self.network_class = builder_name(type(self.probe))
        self.name = name or _snake(type(self.probe).__name__)
        self.probe.name = self.name
        outputs = self.probe(_zeros(self.instance_input_shape))  # a second call: the shape of its outputs
        self.output_shape, self.outputs = (None, *tuple(outputs.shape)[1:]), [outputs]
        self.input_shape = (None, *self.instance_input_shape)

    @property
    def layers(self) -> list:
        return self.probe.layers

    def fresh(self, instance=None):
        """A new instance from the builder (or `instance`, one), called once on the inputs, its top-level layers
        named by their place."""
        from tflottery.models.keras3 import is_keras3, stable_names

        instance = instance if instance is not None else self.builder()
        if not is_keras3(instance):
            raise ConfigError(f"model={builder_name(self.builder)} built a {type(instance).__name__}, not a Keras 3 "
                              "model: pass the class of your keras.Model, or a function that returns one.")
        instance(_zeros(self.instance_input_shape))
        return stable_names(instance)

    def copy(self) -> "Keras3Network":
        return Keras3Network(self.builder, self.instance_input_shape, self.name)

    def variables_by_path(self) -> dict:
        from tflottery.models.keras3 import weight_variables as of_keras3

        return of_keras3(self.probe)

    def fresh_weights(self, seed: int) -> dict:
        """{path: array} of a new instance initialised under `seed` (Keras 3's seeded global generator)."""
        from tflottery.models.keras3 import get_weights, keras3

        keras3().utils.set_random_seed(derive_seed(seed, 0, None, self.name, "built"))
        return get_weights(self.fresh())

    def description(self) -> dict:
        return {"class_name": KIND, "config": {
            "name": self.name, "builder": self.network_class, "keras": 3, "inputs": list(self.instance_input_shape),
            "outputs": int(self.output_shape[-1]),
            "weights": [[k, [int(d) for d in v.shape], str(getattr(v.dtype, "name", v.dtype))]
                        for k, v in self.variables_by_path().items()]}}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.description(), sort_keys=True)


def _zeros(shape: tuple):
    import numpy as np

    return np.zeros((1, *shape), "float32")


def network_of(builder: Callable, input_shape: tuple, name: "str | None" = None):
    """The run's network of the code `builder`: a `Keras3Network` when it builds a Keras 3 model, else
    `built_model`'s (a tf_keras model)."""
    from tflottery.models.keras3 import is_keras3

    try:
        probe = builder()
    except TypeError:
        probe = None  # make_instance says why in one line
    if is_keras3(probe):
        return Keras3Network(builder, input_shape, name, probe)
    return built_model(builder, input_shape, name)
