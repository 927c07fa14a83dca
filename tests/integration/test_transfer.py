"""Transfer (Morcos et al. 2019): a ticket retrained on other labels, data or optimizer, as branches of its level."""
import json

import numpy as np
import pytest

from helpers import tiny_config, zeros_outside
from tflottery import export_ticket, transfer
from tflottery.config import DataConfig, TrainingConfig
from tflottery import find_ticket
from tflottery.core.errors import ConfigError, TicketError
from tflottery.tickets import read_ticket

pytestmark = pytest.mark.slow

STEPS = {"steps": "30it", "eval_every": "15it", "verbose": False, "steps_per_execution": 5}
FIVE_TO_NINE = DataConfig(dataset="mnist", labels=[5, 6, 7, 8, 9], validation=200)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    where = tmp_path_factory.mktemp("transfer")
    config = tiny_config(levels=2)
    config.data.labels, config.runs_dir = [0, 1, 2, 3, 4], str(where / "runs")
    run = find_ticket(config)
    return run, export_ticket(run, 2, where / "ticket"), where


def test_a_run_level_retrains_on_labels_5_9_as_a_branch_and_exports_as_a_ticket(source):
    run, _, where = source
    rep = run.replicate(0)
    ticket = rep.load_level(2)
    result = transfer(run.path, FIVE_TO_NINE, STEPS)
    assert result.path == run.path and result.level == 2  # under the source run, beside the ticket
    assert set(rep.branches(2)) == {"ticket", result.branches["rewind"], result.branches["reinit"]}
    record = result.record("rewind")
    hidden = [k for k in ticket.masks if k != "output/kernel"]
    assert all(np.array_equal(record.masks[k], ticket.masks[k]) for k in hidden)  # the ticket: its hidden layers
    assert record.masks["output/kernel"].all()  # head=fresh (Morcos et al.): the target's own output layer, unpruned
    assert not np.array_equal(record.start["output/kernel"], ticket.start["output/kernel"])
    assert np.array_equal(record.start["fc1/kernel"], ticket.start["fc1/kernel"])  # from the rewind weights
    assert zeros_outside(record.final, record.masks)
    assert result.metrics("rewind")["final_test_accuracy"] > 0.6  # 5 classes: chance is 0.2
    assert result.metrics("reinit")["final_test_accuracy"] > 0.2
    again = transfer(run.path, FIVE_TO_NINE, STEPS)
    assert again.trained == [] and again.branches == result.branches  # finished branches are not retrained
    exported = export_ticket(run, 2, where / "moved", branch=result.branches["rewind"])
    moved = read_ticket(exported)
    assert moved.meta["data"]["labels"] == [5, 6, 7, 8, 9] and moved.meta["branch"] == result.branches["rewind"]
    assert np.array_equal(moved.weights["fc1/kernel"], record.final["fc1/kernel"])


def test_a_ticket_file_is_imported_under_its_content_digest(source, tmp_path):
    run, path, where = source
    result = transfer(path, FIVE_TO_NINE, STEPS, runs_dir=tmp_path / "runs")
    digest = read_ticket(path).digest
    assert result.path == tmp_path / "runs" / f"ticket-{digest[:16]}"
    assert result.metrics("rewind")["final_test_accuracy"] > 0.6
    reinit_ticket = export_ticket(run, 1, where / "level1")  # another ticket of the same run: its own results
    second = transfer(reinit_ticket, FIVE_TO_NINE, STEPS, runs_dir=tmp_path / "runs")
    assert second.path != result.path and second.trained  # never the first ticket's numbers


@pytest.mark.parametrize("head", ["fresh", "fresh_pruned"])
def test_a_new_head_for_ten_classes(source, head):
    run, _, _ = source
    ticket = run.replicate(0).load_level(2)
    result = transfer(run.path, DataConfig(dataset="mnist", validation=400), STEPS, reinit=False, head=head)
    record = result.record("rewind")
    assert record.masks["output/kernel"].shape == (100, 10)
    kept = record.masks["output/kernel"].mean()
    assert kept == 1.0 if head == "fresh" else kept == pytest.approx(ticket.masks["output/kernel"].mean(), abs=0.002)
    assert np.array_equal(record.masks["fc2/kernel"], ticket.masks["fc2/kernel"])
    assert zeros_outside(record.final, record.masks)
    assert set(result.branches) == {"rewind"}
    meta = json.loads((result.store.replicate(0).level_dir(2, result.branches["rewind"]) / "branch.json").read_text())
    assert meta["params"]["head"] == head


@pytest.mark.parametrize("head", ["reuse", "reuse_mask"])
def test_the_tickets_own_head_for_as_many_classes(source, head):
    run, _, _ = source
    ticket = run.replicate(0).load_level(2)
    record = transfer(run.path, FIVE_TO_NINE, STEPS, reinit=False, head=head).record("rewind")
    assert np.array_equal(record.masks["output/kernel"], ticket.masks["output/kernel"])
    same_weights = np.array_equal(record.start["output/kernel"], ticket.start["output/kernel"])
    assert same_weights == (head == "reuse")
    with pytest.raises(ConfigError, match=f"head={head} keeps the ticket's output layer of 5 classes, but the target "
                                          "has 10: use head=fresh"):
        transfer(run.path, DataConfig(dataset="mnist", validation=400), STEPS, head=head)


def test_other_optimizer(source):
    run, _, _ = source
    training = TrainingConfig(optimizer="sgd", lr=0.05, momentum=0.9, **STEPS)
    result = transfer(run.path, DataConfig(dataset="mnist", labels=[0, 1, 2, 3, 4], validation=200), training,
                      reinit=False)
    assert result.metrics("rewind")["final_test_accuracy"] > 0.6
    assert zeros_outside(result.record("rewind").final, result.record("rewind").masks)
    meta = json.loads((result.store.replicate(0).level_dir(2, result.branches["rewind"]) / "branch.json").read_text())
    assert meta["params"]["training"]["optimizer"] == "sgd"


def test_input_shape_mismatch_and_bad_sources_are_refused(source, tmp_path):
    run, _, _ = source
    with pytest.raises(TicketError, match="inputs of shape \\(28, 28, 1\\) but cifar10 has \\(32, 32, 3\\)"):
        transfer(run.path, DataConfig(dataset="cifar10", source="synthetic", validation=100), STEPS)
    with pytest.raises(TicketError, match="neither a run directory .* nor a ticket"):
        transfer(tmp_path, FIVE_TO_NINE, STEPS)
    with pytest.raises(TicketError, match="Level 7 .* is not finished"):
        transfer(run.path, FIVE_TO_NINE, STEPS, level=7)
