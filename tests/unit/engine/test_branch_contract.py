"""The branch registry's contract, parametrised over every registered kind: a kind is tested the moment its
line is added. Every per-level branch starts at its level's sparsity, layer by layer, from the level's
seeds alone (the same start twice), and carries its own legend and style."""
import numpy as np
import pytest

from tflottery.engine.branches import BRANCHES, kind_of, level_branch_kinds
from tflottery.pruning import masks as mask_lib

STYLE_KEYS = {"color", "marker", "linestyle"}


@pytest.fixture(scope="module")
def ctx(tiny_run):
    """Replicate 0 of the session's tiny run (3 levels), as branches see it."""
    from tflottery.engine.run import open_run, replicate_context

    return replicate_context(open_run(tiny_run.path, verbose=False), 0)


@pytest.mark.parametrize("kind", sorted(BRANCHES))
def test_every_branch_kind_says_how_figures_and_tables_name_and_draw_it(kind):
    cls = BRANCHES[kind]
    assert cls.kind == kind and kind_of(kind) is cls and kind_of(f"{kind}-0123456789") is cls
    assert "-" not in kind  # a stored key is <kind>-<hash>
    assert isinstance(cls.legend(), str) and cls.legend() and isinstance(cls.table_name(), str) and cls.table_name()
    assert set(cls.style) <= STYLE_KEYS and (not cls.style or "color" in cls.style)
    assert not cls.control or cls.per_level  # a control the verdict asks for must be nameable in --branches


def _weights(start):
    return start.weights() if callable(start.weights) else start.weights


@pytest.mark.parametrize("kind", level_branch_kinds())
def test_every_per_level_branch_starts_at_its_levels_sparsity_from_its_seeds(ctx, kind):
    branch = BRANCHES[kind]()
    for level in (1, 2):
        wanted = mask_lib.counts(ctx.level_masks(level))
        first, again = branch.start(ctx, level), branch.start(ctx, level)
        assert mask_lib.counts(first.masks) == wanted, (kind, level)
        assert all(np.array_equal(first.masks[k], again.masks[k]) for k in wanted), (kind, level)
        one, two = _weights(first), _weights(again)
        assert all(np.array_equal(one[k], two[k]) for k in one), (kind, level)
        assert first.end_step > first.start_step >= 0
    assert not branch.applies(0) and branch.applies(1)


@pytest.mark.parametrize("kind", ["random_prune", "set", "rigl"])
def test_random_and_dynamic_sparse_masks_take_erk_or_uniform_counts_at_the_levels_total(ctx, kind):
    from tflottery.pruning.density import layer_counts

    level = 2
    ticket = ctx.level_masks(level)
    shapes = {k: ticket[k].shape for k in ctx.strategy.sizes if k in ctx.strategy.pruned}
    for density in ("erk", "uniform"):
        start = BRANCHES[kind](density=density).start(ctx, level)
        wanted = layer_counts(density, shapes, sum(int(ticket[k].sum()) for k in shapes))
        assert {k: int(start.masks[k].sum()) for k in shapes} == wanted, (kind, density)
    assert mask_lib.counts(BRANCHES[kind]().start(ctx, level).masks) == mask_lib.counts(ticket)  # the default


def test_rigl_at_2x_trains_twice_the_steps_with_its_schedule_stretched(ctx):
    import dataclasses

    from tflottery.engine.branches.random_prune import stretched

    one, two = BRANCHES["rigl"](delta_t=5).start(ctx, 1), BRANCHES["rigl"](delta_t=5, steps_multiplier=2).start(ctx, 1)
    assert one.training is None and two.end_step == 2 * one.end_step == 60 and two.start_step == one.start_step == 0
    assert two.training.steps == "60it"
    # mask updates every 5 steps up to 75% of training, the drop fraction's cosine over the stretched span
    assert (one.rewire[0], two.rewire[0]) == ([5, 10, 15, 20], [5, 10, 15, 20, 25, 30, 35, 40, 45])
    assert (one.rewire[1].t_end, two.rewire[1].t_end) == (22, 45)  # updates end at 75% of each budget
    assert two.rewire[1].fraction(0) == one.rewire[1].fraction(0) == 0.3 and two.rewire[1].fraction(45) == 0.0
    static = BRANCHES["random_prune"](steps_multiplier=5).start(ctx, 1)  # Evci et al.'s static baseline at 5x
    assert static.end_step == 150 and static.training.steps == "150it"
    schedule = dataclasses.replace(ctx.config.training, steps="100it", warmup="10it", milestones=["50it", "1ep"])
    got = stretched(schedule, 5, ctx.data.steps_per_epoch)
    assert (got.steps, got.warmup, got.milestones) == ("500it", "50it", ["250it", f"{5 * ctx.data.steps_per_epoch}it"])
