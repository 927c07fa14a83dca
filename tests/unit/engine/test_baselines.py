"""Baselines beside the ticket: pruning at initialisation against its definitions, its ablations, and the
mask updates of dynamic sparse training, on a tiny network computed by hand in numpy."""
import numpy as np
import pytest

from tflottery.core.keras_compat import keras
from tflottery.engine.branches import BRANCHES
from tflottery.engine.branches.dynamic import rewire_layer
from tflottery.engine.branches.grasp import grasp_scores
from tflottery.engine.branches.scored import keep_order
from tflottery.engine.branches.snip import snip_scores
from tflottery.engine.branches.synflow import synflow_scores
from tflottery.pruning import masks as mask_lib

NAMES = ["fc1/kernel", "output/kernel"]


@pytest.fixture
def tiny():
    """A 4-3-2 ReLU network with fixed weights, a batch of 5, and its parameters as numpy float64."""
    rng = np.random.default_rng(0)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, activation="relu", name="fc1")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="output")(x))
    params = {"W1": rng.normal(size=(4, 3)), "b1": rng.normal(size=3) * 0.1, "W2": rng.normal(size=(3, 2)),
              "b2": rng.normal(size=2) * 0.1}
    model.set_weights([params[k].astype(np.float32) for k in ("W1", "b1", "W2", "b2")])
    x, y = rng.normal(size=(5, 4)), np.array([0, 1, 1, 0, 1])
    return model, params, x, y


def numpy_gradients(p, x, y, temperature=1.0):
    """dL/dW1, dL/dW2 of the mean cross-entropy of softmax(logits / T), by hand."""
    pre = x @ p["W1"] + p["b1"]
    h = np.maximum(pre, 0)
    z = (h @ p["W2"] + p["b2"]) / temperature
    soft = np.exp(z - z.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    dz = (soft - np.eye(2)[y]) / len(y) / temperature
    dh = dz @ p["W2"].T * (pre > 0)
    return {"fc1/kernel": x.T @ dh, "output/kernel": h.T @ dz}


def batch(x, y):
    return [(x.astype(np.float32), y)]


def test_snip_scores_are_the_connection_sensitivity_g_times_w(tiny):
    model, p, x, y = tiny
    g = numpy_gradients(p, x, y)
    scores = snip_scores(model, NAMES, batch(x, y))
    for k, w in (("fc1/kernel", p["W1"]), ("output/kernel", p["W2"])):
        np.testing.assert_allclose(scores[k], np.abs(g[k] * w), rtol=1e-4, atol=1e-7)


def test_grasp_scores_are_w_times_the_hessian_gradient_product(tiny):
    model, p, x, y = tiny
    T, eps = 2.0, 1e-5
    g = numpy_gradients(p, x, y, T)
    keys = {"fc1/kernel": "W1", "output/kernel": "W2"}

    def shifted(sign):  # the gradient at the kernels moved by sign x eps x g: Hg by central differences
        q = dict(p)
        for k, name in keys.items():
            q[name] = p[name] + sign * eps * g[k]
        return numpy_gradients(q, x, y, T)

    plus, minus = shifted(1), shifted(-1)
    scores = grasp_scores(model, NAMES, batch(x, y), T)
    for k, name in keys.items():
        hg = (plus[k] - minus[k]) / (2 * eps)
        np.testing.assert_allclose(scores[k], p[name] * hg, rtol=2e-3, atol=1e-6)


def test_snip_and_grasp_over_several_batches_score_from_the_sum_of_the_per_batch_gradients(tiny):
    """Three batches: SNIP is |w . (g1 + g2 + g3)|, GraSP w . (H1 + H2 + H3)(g1 + g2 + g3), each batch's g and H
    computed by hand; summing or averaging the batches ranks the weights alike (the mask is the same)."""
    model, p, x, y = tiny
    rng = np.random.default_rng(1)
    data = [(x, y), (rng.normal(size=(5, 4)), np.array([1, 1, 0, 0, 1])), (rng.normal(size=(4, 4)), np.array([0, 0, 1, 0]))]
    keys = {"fc1/kernel": "W1", "output/kernel": "W2"}
    T, eps = 2.0, 1e-5

    def total(q, temperature):
        grads = [numpy_gradients(q, a, b, temperature) for a, b in data]
        return {k: sum(g[k] for g in grads) for k in keys}

    g = total(p, 1.0)
    snip = snip_scores(model, NAMES, [(a.astype(np.float32), b) for a, b in data])
    for k, name in keys.items():
        np.testing.assert_allclose(snip[k], np.abs(g[k] * p[name]), rtol=1e-4, atol=1e-7)
    g = total(p, T)

    def shifted(sign):
        return total({**p, **{name: p[name] + sign * eps * g[k] for k, name in keys.items()}}, T)

    plus, minus = shifted(1), shifted(-1)
    grasp = grasp_scores(model, NAMES, [(a.astype(np.float32), b) for a, b in data], T)
    for k, name in keys.items():
        np.testing.assert_allclose(grasp[k], p[name] * (plus[k] - minus[k]) / (2 * eps), rtol=2e-3, atol=1e-6)


def test_class_balanced_score_data_holds_as_many_examples_of_every_class(ctx):
    from tflottery.engine.branches.scored import balanced

    data = balanced(ctx, seed=3, per_class=7)
    labels = np.concatenate([np.asarray(b) for _, b in data])
    assert sorted(np.bincount(labels).tolist()) == [7] * ctx.data.num_classes
    again = np.concatenate([np.asarray(b) for _, b in balanced(ctx, seed=3, per_class=7)])
    other = np.concatenate([np.asarray(a).ravel() for a, _ in balanced(ctx, seed=4, per_class=7)])
    first = np.concatenate([np.asarray(a).ravel() for a, _ in data])
    assert np.array_equal(labels, again) and not np.array_equal(first, other)  # seeded: another seed, other examples


def test_synflow_scores_are_the_synaptic_flow_of_the_absolute_network_on_ones(tiny):
    model, p, _, _ = tiny
    a = {k: np.abs(v) for k, v in p.items()}
    h = np.ones(4) @ a["W1"] + a["b1"]  # every unit active: all inputs and parameters are positive
    d_w2 = np.outer(h, np.ones(2))  # dR/dW2 = h, R = sum(h |W2| + |b2|)
    d_w1 = np.outer(np.ones(4), a["W2"].sum(1))
    scores = synflow_scores(model, NAMES)
    np.testing.assert_allclose(scores["output/kernel"], d_w2 * a["W2"], rtol=1e-5)
    np.testing.assert_allclose(scores["fc1/kernel"], d_w1 * a["W1"], rtol=1e-5)


def test_scores_of_any_sign_select_in_their_order_and_invert_reverses_it():
    scores = {"a": np.array([[0.5, -2.0], [3.0, 0.5]]), "b": np.array([-1.0, 10.0])}
    shifted = keep_order(scores, ["a", "b"])
    assert min(v.min() for v in shifted.values()) == 0 and shifted["a"].tolist() == [[2.5, 0.0], [5.0, 2.5]]
    inverted = keep_order(scores, ["a", "b"], invert=True)
    assert inverted["b"].tolist() == [11.0, 0.0] and inverted["a"][0, 1] == 12.0
    kept = mask_lib.drop_smallest(inverted["a"], np.ones((2, 2), bool), 2)  # ties (0.5, 0.5): by position
    assert kept.tolist() == [[False, True], [False, True]]
    with pytest.raises(Exception, match="NaN or infinite"):
        keep_order({"a": np.array([np.nan])}, ["a"])


@pytest.fixture(scope="module")
def ctx(tiny_run):
    """Replicate 0 of the session's tiny run (3 levels), as branches see it."""
    from tflottery.engine.run import open_run, replicate_context

    return replicate_context(open_run(tiny_run.path, verbose=False), 0)


@pytest.mark.parametrize("kind,params", [("snip", {}), ("grasp", {}), ("synflow", {"rounds": 5}),
                                         ("magnitude_init", {}), ("ticket_ablation", {})])
def test_each_mask_source_and_each_ablation_keeps_the_levels_per_layer_counts(ctx, kind, params):
    level = 2
    wanted = mask_lib.counts(ctx.level_masks(level))
    ablations = ("shuffle", "reinit", "invert") if kind == "ticket_ablation" else ("none", "shuffle", "reinit", "invert")
    masks = {}
    for ablation in ablations:
        start = BRANCHES[kind](**params, ablation=ablation).start(ctx, level)
        masks[ablation] = start.masks
        assert mask_lib.counts(start.masks) == wanted, (kind, ablation)
        weights = start.weights() if callable(start.weights) else start.weights
        reinit = ablation == "reinit"
        assert any(not np.array_equal(weights[k], ctx.rewind_weights()[k]) for k in wanted) == reinit
    assert all(not np.array_equal(masks["invert"][k], masks["shuffle"][k]) for k in wanted)
    if "none" in masks:
        assert all(np.array_equal(masks["none"][k], masks["reinit"][k]) for k in wanted)  # reinit moves weights only
        assert all(not np.array_equal(masks["none"][k], masks["invert"][k]) for k in wanted)


def test_ranking_the_tickets_own_magnitudes_gives_the_tickets_mask(ctx):
    """The ticket ablations select as the ticket does: without an ablation the selection is the ticket."""
    level, source = 2, ctx.record(1)
    names = list(ctx.strategy.sizes)
    mine = ctx.strategy.prune(keep_order({k: np.abs(source.final[k]) for k in names}, names), source.masks,
                              ctx.plan.rows[level])
    assert all(np.array_equal(mine[k], ctx.level_masks(level)[k]) for k in names)


def test_synflow_needs_no_data_and_snip_does(ctx):
    synflow, snip = BRANCHES["synflow"](rounds=5), BRANCHES["snip"]()
    before = synflow.start(ctx, 1).masks, snip.start(ctx, 1).masks
    data = ctx.data
    x, y = data.arrays["train"]
    try:
        import dataclasses

        ctx.data = dataclasses.replace(data, arrays={**data.arrays, "train": (x[::-1].copy(), y[::-1].copy())})
        after = synflow.start(ctx, 1).masks, snip.start(ctx, 1).masks
    finally:
        ctx.data = data
    assert all(np.array_equal(before[0][k], after[0][k]) for k in before[0])
    assert any(not np.array_equal(before[1][k], after[1][k]) for k in before[1])


def test_a_mask_update_keeps_the_count_zeroes_regrown_weights_and_regrows_by_score():
    rng = np.random.default_rng(1)
    mask = rng.random((20, 10)) < 0.5
    weights = rng.normal(size=(20, 10)) * mask
    grow = rng.random((20, 10))
    new, out, kept = rewire_layer(weights, mask, 0.3, grow)
    n = int(round(0.3 * mask.sum()))
    dropped, regrown = mask & ~kept, new & ~kept
    assert new.sum() == mask.sum() and dropped.sum() == regrown.sum() == n  # the layer's count never changes
    assert np.all(out[~new] == 0) and np.all(out[regrown] == 0)  # pruned exactly zero, regrown at zero
    assert np.array_equal(out[kept], weights[kept])  # the rest untouched
    assert np.abs(weights[dropped]).max() <= np.abs(weights[kept]).min()  # the smallest magnitudes went
    assert grow[regrown].min() >= grow[~kept & ~new].max()  # the largest grow scores came back (RigL: |grad|)
