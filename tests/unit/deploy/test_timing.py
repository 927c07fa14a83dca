"""Which way to run a .tflite file is named only when repeated timings separate."""
import pytest

from tflottery.deploy.verify import faster


@pytest.mark.parametrize("default,builtin,verdict", [
    ([31, 33, 32, 30, 34], [58, 55, 60, 57, 56], "default"),
    ([58, 55, 60, 57, 56], [31, 33, 32, 30, 34], "builtin"),
    ([41, 45, 39, 47, 43], [45, 41, 44, 40, 46], "either"),  # the same file, overlapping rounds
    ([40, 40, 40, 40, 44], [45, 45, 45, 45, 45], "either"),  # one slow round: less than the margin apart
])
def test_a_verdict_needs_every_round_of_one_under_every_round_of_the_other(default, builtin, verdict):
    assert faster({"default": default, "builtin": builtin}) == verdict
