"""A level's steps cut at its evaluation and capture points, trained as runs of equal segments (one fit each)."""
from tflottery.engine.trainer.fit import equal_runs


def test_evaluation_epochs_of_one_length_are_one_run():
    assert equal_runs(0, [36 * e for e in range(1, 9)]) == [(0, 36, 8)]
    assert equal_runs(288, [288 + 36 * e for e in range(1, 9)]) == [(288, 36, 8)]  # a level that starts later


def test_points_off_the_grid_split_the_runs_and_every_step_is_covered_once():
    points = [7, 25, 50, 75, 100, 110]  # a capture at 7, evaluations every 25, the end at 110
    runs = equal_runs(0, points)
    assert runs == [(0, 7, 1), (7, 18, 1), (25, 25, 3), (100, 10, 1)]
    steps = [s for first, length, count in runs for s in range(first, first + length * count)]
    assert steps == list(range(110))
    ends = [first + length * (e + 1) for first, length, count in runs for e in range(count)]
    assert ends == points  # each run's epochs end at exactly the points, in order
