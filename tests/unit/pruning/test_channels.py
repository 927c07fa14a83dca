"""Channel tickets: IMP in whole output channels (Dense neurons, conv filters) with a removed channel's readers
following, every per-level baseline in channels too, and the ticket shrunk to a smaller dense network that
computes what the masked one computes."""
import numpy as np
import pytest

from helpers import tiny_config
from tflottery import find_ticket, models
from tflottery.core.errors import ConfigError
from tflottery.models.channels import graph, groups, shrink


def test_the_channel_graph_follows_pooling_and_flatten_and_stops_at_the_logits():
    model = models.build("lenet5", (28, 28, 1), 10, 0)
    found, refused = groups(model)
    assert {k: [(c.name, c.spatial) for c in g.consumers] for k, g in found.items()} == {
        "conv1": [("conv2", 1)], "conv2": [("fc1", 25)], "fc1": [("fc2", 1)], "fc2": [("output", 1)]}
    assert refused == {"output": "its outputs are the model's outputs"}
    assert graph(model, ["conv1/kernel", "conv2/kernel", "fc1/kernel", "output/kernel"]) == {
        "conv1/kernel": [["conv2/kernel", 1, -2]], "conv2/kernel": [["fc1/kernel", 25, 0]]}  # fc2 is no target


def test_a_residual_add_is_not_followed_and_says_why():
    from tflottery.core.keras_compat import keras

    inputs = keras.Input((8,))
    a = keras.layers.Dense(8, name="a")(inputs)
    b = keras.layers.Dense(8, name="b")(a)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(keras.layers.Add(name="add")([a, b])))
    found, refused = groups(model)
    assert "a" not in found and "add (Add)" in refused["a"] and "add (Add)" in refused["b"]


def test_imp_in_channels_keeps_whole_channels_its_readers_follow_and_the_ticket_shrinks_exactly(in_tmp, sample_data):
    config = tiny_config(levels=2, branches=("reinit", "random_prune"), structure={"kind": "channels"})
    config.model.name = "lenet5"
    run = find_ticket(config, data=sample_data)
    rep = run.replicate(0)
    base = models.build("lenet5", (28, 28, 1), 10, 0)
    for branch in ("ticket", "reinit", "random_prune"):
        record = rep.load_level(2, branch)
        masks = record.masks
        for layer, kept in (("conv1", 5), ("conv2", 13), ("fc1", 77), ("fc2", 54)):  # 0.9^2 of filters, 0.8^2 of neurons
            grid = masks[f"{layer}/kernel"].reshape(-1, masks[f"{layer}/kernel"].shape[-1])
            assert grid.any(axis=0).sum() == kept, (branch, layer)
            assert np.array_equal(grid, np.outer(grid.any(axis=1), grid.any(axis=0))), (branch, layer)  # whole
        dead_fc1 = ~masks["fc1/kernel"].any(axis=0)
        assert not masks["fc2/kernel"][dead_fc1].any()  # a removed neuron's readers follow
        dead_conv2 = ~masks["conv2/kernel"].reshape(-1, 16).any(axis=0)
        assert not masks["fc1/kernel"].reshape(25, 16, -1)[:, dead_conv2].any()  # through the Flatten
        kept = sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values())
        assert record.metrics["remaining"] == pytest.approx(kept, abs=1e-12)
    ticket, random = rep.load_level(2), rep.load_level(2, "random_prune")
    assert any(not np.array_equal(ticket.masks[k], random.masks[k]) for k in ticket.masks)

    masked = {k: v * ticket.masks[k] if k in ticket.masks else v for k, v in ticket.final.items()}
    models.set_weights(base, masked)
    shrunk = shrink(base, masked, ticket.masks)
    small, weights, masks, removed = shrunk.model, shrunk.weights, shrunk.masks, shrunk.removed
    assert removed == {"conv1": (6, 5), "conv2": (16, 13), "fc1": (120, 77), "fc2": (84, 54)}
    conv1, conv2, fc1, fc2, out = 5 * 25 + 5, 5 * 5 * 5 * 13 + 13, 13 * 25 * 77 + 77, 77 * 54 + 54, 54 * 10 + 10
    assert small.count_params() == sum(int(np.prod(w.shape)) for w in weights.values()) == \
        conv1 + conv2 + fc1 + fc2 + out == 31632  # of 61,706
    images = sample_data.arrays["test"][0][:64].astype("float32") / 255.0
    np.testing.assert_allclose(small.predict(images, verbose=0), base.predict(images, verbose=0), atol=1e-5)
    assert all(m.all() for k, m in masks.items() if k != "output/kernel")  # what is left is dense but the head
    rewind = shrunk.cut(ticket.start)  # the rewind weights, cut alike
    assert {k: v.shape for k, v in rewind.items()} == {k: v.shape for k, v in weights.items()}

    from tflottery import export_ticket, load_ticket, read_ticket

    path = export_ticket(run, out=in_tmp / "small", shrink=True)
    loaded, meta = load_ticket(path), read_ticket(path).meta
    np.testing.assert_allclose(loaded.predict(images, verbose=0), base.predict(images, verbose=0), atol=1e-5)
    assert meta["shrunk"] == {"channels": {k: list(v) for k, v in removed.items()}, "weights": [61706, 31632]}
    assert meta["weights"]["kept"] + meta["weights"]["dense"] == int(masks["output/kernel"].sum()) + 31632 - 540
    with pytest.raises(Exception, match="no channel of this ticket can go"):
        export_ticket(run, level=0, out=in_tmp / "dense", shrink=True)


def test_channels_prune_layer_by_layer_only():
    from tflottery.config import PruningConfig
    from tflottery.pruning.resolve import bind

    with pytest.raises(ConfigError, match="prunes with --strategy=layerwise or early_bird, not global"):
        bind(PruningConfig.from_dict({"strategy": "global", "structure": {"kind": "channels"}}),
             {"fc1/kernel": "dense", "output/kernel": "dense"}, {"fc1/kernel": (4, 3), "output/kernel": (3, 2)})
