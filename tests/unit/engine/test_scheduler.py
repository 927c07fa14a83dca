"""The scheduler: groups of ready units that share a program, split evenly."""
from dataclasses import dataclass

from tflottery.engine import scheduler


@dataclass
class Unit:
    name: str
    key: str = "lenet"

    def group_key(self):
        return self.key


def test_groups_are_even_keep_the_units_order_and_never_mix_programs():
    units = [Unit(f"u{i}") for i in range(15)] + [Unit("other", key="conv")]
    groups = scheduler.groups(units, 6)
    assert [len(g) for g in groups] == [5, 5, 5, 1]
    assert [u.name for g in groups[:3] for u in g] == [f"u{i}" for i in range(15)]
    assert [len(g) for g in scheduler.groups(units[:7], 6)] == [4, 3]
    assert [len(g) for g in scheduler.groups(units[:6], 6)] == [6]


def test_population_size_says_what_it_picked_and_why():
    size, why = scheduler.population_size("auto", 266_200)
    assert 1 <= size <= scheduler.CPU_AUTO and why.startswith(f"auto: {size}")
    assert scheduler.population_size(3, 10) == (3, "3 (as asked)")
    assert scheduler.population_size("auto", 10, distributed=True)[0] == 1
