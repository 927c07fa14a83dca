"""IMPSchedule lays one fit out as IMP's levels: level 0 T steps, later levels T - k."""
import numpy as np
import pytest

from tflottery import IMPSchedule
from tflottery.core.errors import ConfigError


def test_levels_after_the_first_train_from_the_rewind_step_to_the_end():
    schedule = IMPSchedule(0.2, level_steps=10, levels=2, rewind_step=4)
    assert [schedule.level_start(lv) for lv in range(4)] == [0, 10, 16, 22] and schedule.total_steps() == 22
    assert [schedule.level_of(d) for d in (0, 9, 10, 15, 16, 21)] == [0, 0, 1, 1, 2, 2]
    fired = {step: float(s) for step in range(1, 30) for fire, s in [schedule(step)] if bool(fire)}
    assert list(fired) == [11, 17]  # tfmot asks with the 1-based step about to train
    assert np.allclose(list(fired.values()), [0.2, 0.36])


def test_without_levels_it_never_prunes():
    assert not any(bool(IMPSchedule(0.2, 5, 0)(s)[0]) for s in range(1, 20))


@pytest.mark.parametrize("k", [10, 11, -1])
def test_a_rewind_step_outside_the_first_level_is_refused(k):
    with pytest.raises(ConfigError, match="rewind_step"):
        IMPSchedule(0.2, level_steps=10, levels=2, rewind_step=k)


def test_a_schedule_whose_kept_fractions_grow_is_refused_at_construction():
    from tflottery.core.errors import ConfigError
    from tflottery.pruning.schedule import IMPSchedule

    with pytest.raises(ConfigError, match=r"kept=\[1.0, 0.5, 0.8\] grows from one level to the next"):
        IMPSchedule(rate=0.2, levels=2, kept=[1.0, 0.5, 0.8])


@pytest.mark.parametrize("pruning, message", [({"strategy": "nosuch"}, "pruning.strategy='nosuch' is unknown"),
                                              ("global", "pruning='global' must be a dict"),
                                              ({"strategy": "global", "rate": 0}, "pruning.rate=0 removes nothing")])
def test_an_early_bird_callbacks_pruning_is_checked_at_construction(pruning, message):
    from tflottery.core.errors import ConfigError
    from tflottery.pruning.early_bird import EarlyBirdCallback

    with pytest.raises(ConfigError, match=message):
        EarlyBirdCallback(0.3, pruning=pruning)
