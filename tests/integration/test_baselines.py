"""Dynamic sparse training inside the level loop: per-layer counts constant and pruned weights zero at every
step, masks that really move, RigL's longer budget; pruning at initialisation beside the ticket."""
import numpy as np
import pytest

from helpers import tiny_config, zeros_outside
from tflottery import find_ticket
from tflottery.core.keras_compat import keras
from tflottery.pruning import masks as mask_lib

pytestmark = pytest.mark.slow


class EveryStep(keras.callbacks.Callback):
    """After every training step of every unit: its per-layer counts, and whether its pruned weights are zero."""

    def __init__(self):
        super().__init__()
        self.counts, self.zeros = [], []

    def on_train_batch_end(self, batch, logs=None):
        masks, weights = self.model.get_tower(0, "masks"), self.model.get_tower(0)
        self.counts.append(tuple(sorted(mask_lib.counts(masks).items())))
        self.zeros.append(zeros_outside(weights, masks))


def test_set_and_rigl_keep_each_layers_count_and_exact_zeros_at_every_step(in_tmp, sample_data):
    branches = [{"set": {"delta_t": 4}}, {"rigl": {"delta_t": 4}}, {"rigl": {"delta_t": 4, "steps_multiplier": 2}},
                "snip", {"synflow": {"rounds": 10}}]
    config = tiny_config(levels=1, branches=branches)
    config.training.steps_per_execution = 1
    watch = EveryStep()
    run = find_ticket(config, data=sample_data, callbacks=(watch,))
    level_counts = mask_lib.counts(run.replicate(0).load_level(1).masks)
    full = mask_lib.counts(run.replicate(0).load_level(0).masks)
    allowed = {tuple(sorted(full.items())), tuple(sorted(level_counts.items()))}
    assert len(watch.counts) == 30 + 5 * 30 + 60  # every step of every unit (the dense level, five 30-step units, RigL 2x)
    assert set(watch.counts) <= allowed and all(watch.zeros)
    rep = run.replicate(0)
    for key in rep.branches(1):
        record = rep.load_level(1, key)
        assert mask_lib.counts(record.masks) == level_counts and zeros_outside(record.final, record.masks), key
        m = record.metrics
        if key.startswith(("set", "rigl")):
            start = rep.load_level(1, key).start
            assert m["counts_constant"] and m["regrown"] > 0 and m["mask_updates"] >= 5, key
            assert not all(np.array_equal(record.masks[k], start[k] != 0) for k in record.masks)  # the mask moved
    longer = [k for k in rep.branches(1) if k.startswith("rigl") and rep.metrics(1, k)["end_step"] == 60]
    assert len(longer) == 1 and rep.metrics(1, longer[0])["history"][-1]["step"] == 60
