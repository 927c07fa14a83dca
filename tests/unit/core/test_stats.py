"""Intervals over replicates: Student t, paired by replicate, none for one value."""
import pytest

from tflottery.core.stats import interval, paired, t_quantile


def test_the_t_interval_of_known_values():
    assert t_quantile(0.95, 4) == pytest.approx(2.7764, abs=1e-4)  # the textbook table
    got = interval([88.1, 88.4, 87.9, 88.6, 88.0])
    assert got.mean == pytest.approx(88.2) and got.n == 5
    assert got.half_width == pytest.approx(2.7764 * 0.2915 / 5 ** 0.5, rel=1e-3)
    assert got.contains(88.2) and got.above(87.8) and not got.above(88.0) and got.text() == "88.20 ± 0.36"


def test_one_replicate_has_no_interval_and_says_so():
    one = interval([0.8812])
    assert one.low is None and not one.contains(0.8812) and not one.above(0.0) and one.text(100) == "88.12 (n=1)"
    with pytest.raises(ValueError):
        interval([])


def test_differences_are_paired_by_replicate():
    ticket, reinit = {0: 0.90, 1: 0.88, 2: 0.91}, {0: 0.87, 1: 0.86, 2: 0.88, 3: 0.5}
    diff = paired(ticket, reinit)
    assert diff.n == 3 and diff.mean == pytest.approx((0.03 + 0.02 + 0.03) / 3)
    assert diff.above(0.0)  # consistent over replicates although their own intervals overlap
    assert interval(ticket.values()).low < interval(list(reinit.values())[:3]).high
    assert paired({0: 1.0}, {1: 1.0}) is None


def test_the_jackknife_over_copies_counts_copies_not_pairs():
    from tflottery.core.stats import interval, jackknife_pairs

    barrier = [0.2, 0.9, 0.4, 1.3]  # each copy's share of its pairs' barrier
    pairs = {(i, j): barrier[i] + barrier[j] for i in range(4) for j in range(i + 1, 4)}
    jack = jackknife_pairs(pairs)
    assert jack.n == 4 and jack.mean == pytest.approx(sum(pairs.values()) / 6)
    # the six pairs taken as independent would give a narrower interval than four copies support
    assert interval(list(pairs.values())).half_width < jack.half_width
    # an additive statistic is twice the copies' mean, and the jackknife gives exactly twice its interval
    assert jack.half_width == pytest.approx(2 * interval(barrier).half_width, rel=1e-9)
    assert jackknife_pairs({(0, 1): 0.5}).low is None
