"""The structure registry's contract, parametrised over every registered structure and strategy: a kind
is tested the moment its line is added. At every level of iterative pruning its masks are made of its
units, meet the plan's count exactly, and are nested (a pruned weight never comes back)."""
import numpy as np
import pytest

from tflottery.config import PruningConfig
from tflottery.core.errors import ConfigError
from tflottery.pruning import masks as M
from tflottery.pruning.resolve import bind
from tflottery.pruning.strategies import STRATEGIES, total
from tflottery.pruning.structures import STRUCTURES, structure_kind

DENSE = {"fc1/kernel": (64, 32), "fc2/kernel": (32, 16), "output/kernel": (16, 10)}
CONV = {"conv/kernel": (3, 3, 4, 8), **DENSE}  # global ranks one kind of unit: convolutions under layerwise only


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_every_structure_names_itself_by_its_example(structure):
    cls = STRUCTURES[structure]
    assert cls.kind == structure and cls.description
    assert structure_kind(cls.example) == structure


@pytest.mark.parametrize("strategy,shapes", [(name, DENSE) for name in sorted(STRATEGIES)] + [("layerwise", CONV)])
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_every_structure_holds_under_every_strategy_and_the_plan_is_met(structure, strategy, shapes):
    kinds = {k: "conv" if len(s) == 4 else "dense" for k, s in shapes.items()}
    config = PruningConfig.from_dict({"strategy": strategy, "structure": STRUCTURES[structure].example})
    served = STRUCTURES[structure].strategies
    if served is not None and strategy not in served:  # refused in one line, naming the strategies it serves
        with pytest.raises(ConfigError, match=f"prunes with --strategy={' or '.join(served)}, not {strategy}"):
            bind(config, kinds, shapes)
        return
    bound = bind(config, kinds, shapes)
    rng = np.random.default_rng(0)
    masks = M.ones_like({k: np.zeros(s) for k, s in shapes.items()}, shapes)
    plan = bound.plan(6)
    for level in range(1, 7):
        weights = {k: rng.normal(size=s) * (masks[k] + 0.0) for k, s in shapes.items()}  # "trained": pruned stay 0
        pruned = bound.prune(weights, masks, plan[level])
        assert all(bound.structure.holds(k, pruned[k]) for k in shapes), (structure, strategy, level)
        assert sum(int(m.sum()) for m in pruned.values()) == total(plan[level]), level
        assert all(not np.any(pruned[k] & ~masks[k]) for k in shapes), level  # nested
        masks = pruned
    assert total(plan[6]) < 0.5 * sum(int(np.prod(s)) for s in shapes.values())  # it really pruned
