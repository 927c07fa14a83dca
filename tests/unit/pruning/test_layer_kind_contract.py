"""The layer kinds registry's contract, over every registered kind: in tf_keras and in Keras 3, each named attribute
of a built layer is one of its variables, found by the walk at its path with the kind's rate kind (a registry line
whose attribute a library spells otherwise would prune nothing, silently). A new line needs an example here."""
import keras as keras3
import pytest

from tflottery.core.keras_compat import keras as tf_keras
from tflottery.models.weights import variable_paths
from tflottery.pruning.targets import LAYER_KINDS, walk

# class name -> (layer factory given a library's `layers`, input shape without the batch)
EXAMPLES = {
    "Dense": (lambda L: L.Dense(3), (4,)),
    "EinsumDense": (lambda L: L.EinsumDense("ab,bc->ac", output_shape=3), (4,)),
    "Conv1D": (lambda L: L.Conv1D(2, 3), (8, 2)),
    "Conv2D": (lambda L: L.Conv2D(2, 3), (8, 8, 2)),
    "Conv3D": (lambda L: L.Conv3D(2, 3), (5, 5, 5, 2)),
    "Conv1DTranspose": (lambda L: L.Conv1DTranspose(2, 3), (8, 2)),
    "Conv2DTranspose": (lambda L: L.Conv2DTranspose(2, 3), (8, 8, 2)),
    "Conv3DTranspose": (lambda L: L.Conv3DTranspose(2, 3), (5, 5, 5, 2)),
    "DepthwiseConv1D": (lambda L: L.DepthwiseConv1D(3), (8, 2)),
    "DepthwiseConv2D": (lambda L: L.DepthwiseConv2D(3), (8, 8, 2)),
    "SeparableConv1D": (lambda L: L.SeparableConv1D(2, 3), (8, 2)),
    "SeparableConv2D": (lambda L: L.SeparableConv2D(2, 3), (8, 8, 2)),
    "Embedding": (lambda L: L.Embedding(10, 4), (5,)),
    "LSTMCell": (lambda L: L.RNN(L.LSTMCell(3)), (5, 2)),
    "GRUCell": (lambda L: L.RNN(L.GRUCell(3)), (5, 2)),
    "SimpleRNNCell": (lambda L: L.RNN(L.SimpleRNNCell(3)), (5, 2)),
}


def test_every_registered_kind_has_an_example():
    assert sorted(EXAMPLES) == sorted(LAYER_KINDS)


@pytest.mark.parametrize("library", [tf_keras, keras3], ids=["tf_keras", "keras3"])
@pytest.mark.parametrize("name", sorted(LAYER_KINDS))
def test_each_registered_attribute_is_a_variable_the_walk_finds_with_its_kind(name, library):
    if not hasattr(library.layers, name) and name not in ("LSTMCell", "GRUCell", "SimpleRNNCell"):
        pytest.skip(f"{library.__name__} has no {name}")
    factory, shape = EXAMPLES[name]
    try:
        layer = factory(library.layers)
    except AttributeError:
        pytest.skip(f"{library.__name__} has no {name}")
    layer(library.Input(shape))
    found = {id(v): (path, kind) for path, v, kind, _ in walk(layer, layer.name)}
    owner = next(sub for sub in [layer, *layer._flatten_layers(include_self=False)] if type(sub).__name__ == name)
    entry = LAYER_KINDS[name]
    for spellings in entry.variables:
        attribute = next(a for a in spellings.split("|") if getattr(owner, a, None) is not None)
        variable = getattr(owner, attribute)
        assert id(variable) in found, (name, attribute)
        path, kind = found[id(variable)]
        assert kind == entry.kind and path.endswith("/" + attribute), (path, kind)
    assert len({path for path, _ in variable_paths(layer, layer.name)}) == len(layer.weights)  # no name twice
