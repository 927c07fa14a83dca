"""Supermasks (masks on untrained weights, learned masks on frozen weights) and ticket comparison."""
import numpy as np
import pytest

from helpers import tiny_config
from tflottery.analysis.compare import chance, compare, compare_masks
from tflottery import find_ticket
from tflottery.core.errors import ConfigError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory, sample_data):
    config = tiny_config(levels=2, branches=["supermask"])
    config.runs_dir = str(tmp_path_factory.mktemp("sm") / "runs")
    return find_ticket(config, data=sample_data)


def test_every_level_reports_its_mask_on_untrained_weights(run):
    from tflottery import models
    from tflottery.engine.edge_popup import signed_constant
    from tflottery.pruning import wrap

    rows = [r for r in run.summary() if r["branch"] == "ticket"]
    assert all(0.0 <= r["mask_at_init_accuracy"] <= 1.0 and 0.0 <= r["signed_constant_accuracy"] <= 1.0 for r in rows)
    rep = run.replicate(0)
    init, masks = rep.load_level(0).start, rep.load_level(2).masks
    model = wrap.wrap(models.lenet_300_100((28, 28, 1), 10))
    x, y = run.data.arrays["test"]
    for key, weights in (("mask_at_init_accuracy", init), ("signed_constant_accuracy", signed_constant(init, masks))):
        models.set_weights(model, weights)
        wrap.set_masks(model, masks)
        direct = float((model.predict(x / 255.0, verbose=0).argmax(1) == y).mean())
        assert direct == rep.metrics(2)[key]  # untrained: exactly the masked network's accuracy
    signed = signed_constant(init, masks)
    assert np.allclose(np.abs(signed["fc1/kernel"]), init["fc1/kernel"].std())
    assert np.array_equal(signed["fc1/bias"], init["fc1/bias"])  # only the pruned kernels change


def test_a_learned_supermask_never_changes_a_frozen_weight_and_keeps_the_levels_sparsity(run):
    from tflottery.engine.edge_popup import signed_constant

    rep = run.replicate(0)
    for level in (1, 2):
        learned, ticket = rep.load_level(level, "supermask"), rep.load_level(level)
        frozen = signed_constant(rep.load_level(0).start, ticket.masks)
        assert all(np.array_equal(learned.start[k], frozen[k]) for k in frozen)  # the frozen weights, bit for bit
        for k, mask in learned.masks.items():
            assert mask.sum() == ticket.masks[k].sum()  # per-layer top-k at the ticket's counts
            assert np.array_equal(learned.final[k], frozen[k] * mask)  # only the mask was learned
        assert not np.array_equal(learned.masks["fc1/kernel"], ticket.masks["fc1/kernel"])
        assert learned.metrics["final_test_accuracy"] > 0.5  # far above chance (0.1) without weight training


def test_a_supermask_exports_as_a_ticket_holding_mask_times_frozen_weights(run, tmp_path):
    from tflottery import export_ticket, load_ticket
    from tflottery.models import get_weights

    record = run.replicate(0).load_level(2, "supermask")
    model = load_ticket(export_ticket(run, 2, tmp_path / "sm", branch="supermask"))
    assert all(np.array_equal(get_weights(model)[k], record.final[k]) for k in record.final)


def test_jaccard_of_a_ticket_with_itself_is_one_and_with_a_random_mask_near_chance(run):
    from tflottery.pruning.masks import random_like

    masks = run.replicate(0).load_level(2).masks
    assert compare_masks(masks, masks)["jaccard"] == 1.0
    rng_masks = random_like(masks, 7)
    result = compare_masks(masks, rng_masks)
    assert result["jaccard"] == pytest.approx(result["chance"], abs=0.01)
    p = q = masks["fc1/kernel"].mean()
    assert result["layers"]["fc1/kernel"][1] == pytest.approx(chance(p, q))


def test_compare_tickets_and_run_levels(run, tmp_path):
    from tflottery import export_ticket

    ticket = export_ticket(run, 2, tmp_path / "t")
    result = compare(str(ticket), f"{run.path}@2", f"{run.path}@2:supermask", f"{run.path}@1", out=tmp_path / "h.png")
    assert result.matrix()[0, 1] == 1.0  # the exported ticket is its run level
    nested = next(p for p in result.pairs if p["a"].endswith("@2") and p["b"].endswith("@1"))
    level1, level2 = run.replicate(0).load_level(1).masks, run.replicate(0).load_level(2).masks
    assert nested["jaccard"] == pytest.approx(sum(m.sum() for m in level2.values()) / sum(m.sum() for m in level1.values()))
    assert result.sign_flips[f"{run.path}@2:supermask"] == 0.0  # frozen weights never flip
    assert 0.0 < result.sign_flips[f"{run.path}@2"] < 0.5
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"


def test_comparing_other_architectures_or_too_few_is_refused(run, in_tmp, sample_data):
    from tflottery.core.keras_compat import keras

    inputs = keras.Input((28, 28, 1))
    other = keras.Model(inputs, keras.layers.Dense(10, name="head")(keras.layers.Flatten()(inputs)), name="other")
    other_run = find_ticket(tiny_config(levels=1), model=other, data=sample_data)
    with pytest.raises(ConfigError, match="prune different architectures"):
        compare(f"{run.path}@1", f"{other_run.path}@1")
    with pytest.raises(ConfigError, match="at least two"):
        compare(f"{run.path}@1")


def test_a_supermask_on_a_model_without_prunable_layers_is_refused(in_tmp, sample_data):
    from tflottery.engine.branches import Supermask
    from tflottery.core.errors import ModelError
    from tflottery.core.keras_compat import keras

    inputs = keras.Input((28, 28, 1))
    depthwise = keras.layers.DepthwiseConv2D(28, depth_multiplier=10, name="d")(inputs)  # masked by variable only
    nothing = keras.Model(inputs, keras.layers.Flatten(name="flat")(depthwise), name="nothing")
    with pytest.raises(ConfigError, match="supermask learns scores for Dense and Conv kernels; d/depthwise_kernel"):
        find_ticket(tiny_config(levels=1, branches=["supermask"]), model=nothing, data=sample_data)
    corner = keras.layers.Cropping2D(((27, 0), (18, 0)), name="corner")(inputs)  # 10 pixels: no weights at all
    flat = keras.Model(inputs, keras.layers.Flatten(name="flat")(corner), name="nothing")
    with pytest.raises(ModelError, match="has no Dense or Conv layer to prune"):
        find_ticket(tiny_config(levels=1, branches=["supermask"]), model=flat, data=sample_data)
    with pytest.raises(ConfigError, match="init='random': use one of"):
        Supermask(init="random")
