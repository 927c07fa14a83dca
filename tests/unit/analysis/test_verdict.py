"""The verdict: intervals over replicates, paired differences, and the line that names the winning ticket."""
import pytest

from tflottery.analysis.verdict import verdict


def rows(accuracy: dict, replicates=5, remaining=None, spread=0.004):
    """Summary rows: accuracy[(level, branch)] = a base accuracy; replicate r adds its own offset (shared by
    every branch of that replicate, as an initialisation would be) and a little noise of its own."""
    remaining = remaining or {0: 1.0, 1: 0.5, 2: 0.2, 3: 0.05}
    out = []
    for (level, branch), base in accuracy.items():
        for r in range(replicates):
            shared, own = spread * (r - 2), 0.0005 * ((r * 7 + level * 3 + len(branch)) % 5 - 2)
            out.append({"replicate": r, "level": level, "branch": branch, "remaining": remaining[level],
                        "early_stop_test_accuracy": base + shared + own, "final_test_accuracy": base - 0.002 + shared,
                        "early_stop_step": 1000 - 100 * level + 10 * r})
    return out


WINNING = {(0, "ticket"): 0.90, (1, "ticket"): 0.905, (2, "ticket"): 0.899, (3, "ticket"): 0.85,
           (1, "reinit"): 0.89, (2, "reinit"): 0.86, (3, "reinit"): 0.80,
           (1, "random_prune"): 0.89, (2, "random_prune"): 0.85, (3, "random_prune"): 0.79}


def test_the_sparsest_level_within_dense_that_beats_both_baselines_is_named():
    v = verdict(rows(WINNING))
    assert v.level == 2  # level 3 beats both baselines but falls below dense's interval
    assert v.line.startswith("level 2 (20.0% of weights remain) is the sparsest winning ticket")
    assert "(above -1: matches dense)" in v.line and v.line.endswith("(paired by replicate, 95%, n=5).")
    dense = next(r for r in v.rows if r["level"] == 0)["early_stop_test_accuracy"]
    assert dense.n == 5 and dense.low < 0.90 < dense.high
    diff = next(d for d in v.differences if d["level"] == 2 and d["baseline"] == "reinit")["interval"]
    assert diff.mean == pytest.approx(0.039, abs=0.002)
    # paired by replicate: the shared offsets cancel, so the difference's interval is far narrower than either's
    ticket = next(r for r in v.rows if (r["level"], r["branch"]) == (2, "ticket"))["early_stop_test_accuracy"]
    assert diff.half_width < ticket.half_width / 3


def test_one_replicate_gives_no_interval_and_says_so():
    v = verdict(rows(WINNING, replicates=1))
    assert v.level is None and v.line.startswith("no verdict: n=1") and "--replicates=3" in v.line
    assert all(r["early_stop_test_accuracy"].low is None for r in v.rows)


def test_without_baselines_a_matching_ticket_is_not_called_winning():
    v = verdict(rows({k: a for k, a in WINNING.items() if k[1] == "ticket"}))
    assert v.level is None and "no reinit,random_prune baseline" in v.line and "level 2" in v.line


def test_a_ticket_no_better_than_a_baseline_is_no_winning_ticket():
    even = {**WINNING, (1, "reinit"): 0.905, (2, "reinit"): 0.899}
    v = verdict(rows(even))
    assert v.level is None and v.line.startswith("no level: the tickets that match dense (paired ticket - dense above "
                                                 "-1 points, n=5) do not beat both")


def test_every_number_reaches_the_table_the_json_and_the_text():
    v = verdict(rows(WINNING))
    table = v.table_rows()
    assert {(r["level"], r["branch"]) for r in table} == set(WINNING)
    row = next(r for r in table if (r["level"], r["branch"]) == (2, "ticket"))
    assert row["n"] == 5 and row["early_stop_test_accuracy_low"] < row["early_stop_test_accuracy_mean"]
    assert row["early_stop_step_mean"] == pytest.approx(820)
    d = v.to_dict()
    assert d["level"] == 2 and d["verdict"] == v.line and len(d["paired"]) == 9  # ticket - dense, reinit, random
    assert d["margin"] == 0.01 and d["min_replicates"] == 3 and "above -1 points" in d["criterion"]
    assert "89.90 ±" in v.text() and "**Verdict:** level 2" in v.text()


def test_fewer_than_three_replicates_give_the_numbers_and_no_verdict():
    v = verdict(rows(WINNING, replicates=2))
    assert v.level is None and v.line.startswith("no verdict: n=2: a verdict needs at least 3 replicates")
    assert all(r["early_stop_test_accuracy"].low is not None for r in v.rows)  # the numbers are there


def test_matching_dense_is_a_paired_equivalence_test_with_a_stated_margin():
    # dense's replicates spread widely (2 points apart) and each ticket is 1.5 points below its own replicate's
    # dense: the old rule (ticket mean above dense's lower 95% bound) called that matching; the paired
    # difference is -1.5 points, tightly, which is outside a 1-point margin
    below = {(0, "ticket"): 0.90, (1, "ticket"): 0.885, (1, "reinit"): 0.85, (1, "random_prune"): 0.85}
    v = verdict(rows(below, spread=0.02))
    dense = next(r for r in v.rows if r["level"] == 0)["early_stop_test_accuracy"]
    ticket = next(r for r in v.rows if (r["level"], r["branch"]) == (1, "ticket"))["early_stop_test_accuracy"]
    assert ticket.mean >= dense.low  # the old rule's "matches"
    diff = next(d for d in v.differences if (d["level"], d["baseline"]) == (1, "dense"))["interval"]
    assert diff.mean == pytest.approx(-0.015, abs=0.001) and diff.high < -0.01
    assert v.level is None and v.line.startswith("no level matches dense (paired ticket - dense 95% interval above -1 "
                                                 "points, n=5)")
    wider = verdict(rows(below, spread=0.02), margin=0.02)  # a 2-point margin, stated
    assert wider.level == 1 and "(above -2: matches dense)" in wider.line


def test_a_ticket_above_a_scattered_dense_says_so_and_what_would_settle_it():
    """The text transformer's case: the tickets end above dense in every replicate, but dense scatters so much that
    the paired interval reaches below the margin; the line gives the sign and the way out, not a bare distance."""
    scattered = [{"replicate": r, "level": level, "branch": branch, "remaining": {0: 1.0, 1: 0.5}[level],
                  "early_stop_test_accuracy": value, "final_test_accuracy": value, "early_stop_step": 150}
                 for level, branch, values in ((0, "ticket", (0.947, 0.946, 0.884)), (1, "ticket", (0.99, 0.98, 0.99)),
                                               (1, "reinit", (0.2, 0.1, 0.3)), (1, "random_prune", (0.1, 0.2, 0.1)))
                 for r, value in enumerate(values)]
    v = verdict(scattered)
    assert v.level is None and "level 1, is +6.10 ± " in v.line
    assert "above dense in the mean; its interval reaches below the margin: more replicates can settle it" in v.line
    below = verdict(rows({(0, "ticket"): 0.90, (1, "ticket"): 0.885, (1, "reinit"): 0.85, (1, "random_prune"): 0.85},
                         spread=0.02))
    assert "is -1.50 ± " in below.line and "more replicates" not in below.line
