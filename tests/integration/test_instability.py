"""Instability analysis (Frankle et al. 2020): copies from a rewind point, the error barrier between them."""
import json

import numpy as np
import pytest

from helpers import tiny_config, zeros_outside
from tflottery.analysis.instability import instability
from tflottery import find_ticket
from tflottery.engine.store import RunStore
from tflottery.core.errors import ConfigError, RunError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory, sample_data):
    config = tiny_config(levels=2)
    config.plan.capture = ["10it"]
    config.runs_dir = str(tmp_path_factory.mktemp("inst") / "runs")
    return find_ticket(config, data=sample_data)


def test_end_points_reproduce_the_copies_and_masks_stay_applied_along_the_path(run, monkeypatch):
    from tflottery.engine import stability

    checked = []
    real = stability.error

    def error(model, dataset):
        checked.append(zeros_outside(model.get_tower(0), model.get_tower(0, "masks")))
        return real(model, dataset)

    monkeypatch.setattr(stability, "error", error)
    result = instability(run.path, 2, "0it", alphas=5, verbose=False)
    point = result.points[0]
    pair = point["pairs"][0]
    assert len(pair["test_error"]) == 5 and pair["alphas"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for end, accuracy in ((0, point["end_test_accuracy"][0]), (-1, point["end_test_accuracy"][1])):
        assert pair["test_error"][end] == pytest.approx(100 * (1 - accuracy), abs=1e-9)  # the copies themselves
    assert checked and all(checked) and point["remaining"] < 0.65  # every point of the path kept the mask
    assert pair["instability"] == pytest.approx(max(pair["test_error"]) - (pair["test_error"][0] + pair["test_error"][-1]) / 2)
    assert point["instability"] == pytest.approx(np.mean([p["instability"] for p in point["pairs"]]))
    rep = RunStore(run.path).replicate(0)
    a, b = (rep.load_level(2, key) for key in point["copies"][:2])
    assert np.array_equal(a.start["fc1/kernel"], b.start["fc1/kernel"])  # same start ...
    assert not np.array_equal(a.final["fc1/kernel"], b.final["fc1/kernel"])  # ... other batch orders
    assert np.array_equal(a.masks["fc1/kernel"], rep.load_level(2).masks["fc1/kernel"])


def test_copies_with_the_same_batch_order_end_identical_with_no_barrier(run):
    point = instability(run.path, 0, "10it", alphas=4, same_order=True, verbose=False).points[0]
    rep = RunStore(run.path).replicate(0)
    first, *others = (rep.load_level(0, key) for key in point["copies"])
    assert all(np.array_equal(first.final[k], b.final[k]) for b in others for k in first.final)  # stacked or alone
    assert point["instability"] == 0.0 and all(len(set(p["test_error"])) == 1 for p in point["pairs"])
    assert point["interval"]["high"] == 0.0 and point["verdict"] == "stable"


def test_copies_trained_together_are_each_what_it_would_be_alone(run):
    from tflottery.engine.branches import Copy
    from tflottery.engine.run import open_run, replicate_context
    from tflottery.engine.units import make_unit

    ctx = replicate_context(open_run(run.path, verbose=False), 0)
    together = [make_unit(ctx, 0, Copy(rewind_step=10, copy=c)) for c in (5, 6, 7)]
    grouped = ctx.trainer.train(together)
    (alone,) = ctx.trainer.train([make_unit(ctx, 0, Copy(rewind_step=10, copy=6))])
    for k in alone.final:
        assert np.array_equal(grouped[1].final[k], alone.final[k])  # bit for bit
    assert grouped[1].result.history == alone.result.history
    assert not np.array_equal(grouped[0].final["fc1/kernel"], alone.final["fc1/kernel"])  # other orders differ


def test_rerunning_resumes_without_retraining_finished_copies(run):
    first = instability(run.path, 0, "0it,10it", alphas=3, verbose=False)
    files = {p["file"]: open(p["file"], "rb").read() for p in first.points}
    copies = [run.path / "replicate_0" / "level_0" / key / "final.npz" for p in first.points for key in p["copies"]]
    stamps = [c.stat().st_mtime_ns for c in copies]
    again = instability(run.path, 0, "0it,10it", alphas=3, verbose=False)
    assert [p["instability"] for p in again.points] == [p["instability"] for p in first.points]
    assert {p: open(p, "rb").read() for p in files} == files
    more = instability(run.path, 0, "0it,10it", alphas=5, verbose=False)  # more points: no copy retrained
    assert [c.stat().st_mtime_ns for c in copies] == stamps and len(more.points[0]["pairs"][0]["alphas"]) == 5


def test_the_default_copies_give_a_barrier_interval_and_stable_is_decided_on_it(run):
    point = instability(run.path, 0, "10it", alphas=3, verbose=False).points[0]
    assert len(point["copies"]) == 4 and len(point["pairs"]) == 6
    low, high = point["interval"]["low"], point["interval"]["high"]
    assert point["interval"]["n"] == 4 and low <= point["instability"] <= high
    assert point["verdict"] == ("stable" if high < 2.0 else "unstable" if low > 2.0 else "undecided")
    assert point["stable"] == (point["verdict"] == "stable")
    strict = instability(run.path, 0, "10it", alphas=3, threshold=max(high, 0) + 1e-6, verbose=False).points[0]
    assert strict["verdict"] == "stable" and strict["copies"] == point["copies"]  # no copy trained again


def test_a_replay_keeps_a_missing_rewind_point_and_is_the_same_dense_run(run):
    rep = RunStore(run.path).replicate(0)
    kept = rep.load_capture(10)
    with pytest.raises(ConfigError, match="was not kept .* --recapture"):
        instability(run.path, 0, "20it", verbose=False)
    rep.capture_path(10).rename(rep.capture_path(10).with_name("saved.npz"))
    try:
        instability(run.path, 0, "10it,20it", alphas=3, copies=2, recapture=True, verbose=False)
        replayed = rep.load_capture(10)
        assert all(np.array_equal(replayed[k], kept[k]) for k in kept)  # bit for bit the original dense run
    finally:
        rep.capture_path(10).with_name("saved.npz").unlink(missing_ok=True)
    assert 20 in rep.captured_steps()


@pytest.mark.parametrize("kwargs,error,message", [
    ({"level": 7}, ConfigError, r"Level 7 .* is not finished; finished levels: \[0, 1, 2\]"),
    ({"rewind": "30it"}, ConfigError, "beyond the training length"),
    ({"rewind": "soon"}, ConfigError, "is not a step"),
    ({"copies": 1}, ConfigError, "copies=1 must be an integer >= 2"),
    ({"alphas": 2}, ConfigError, "alphas=2 must be an integer >= 3"),
    ({"threshold": -1.0}, ConfigError, "threshold=-1.0 must be a positive number"),
    ({"level": 1, "rewind": "10it"}, ConfigError, "found by IMP rewinding to step 0"),
    ({"replicate": 3}, RunError, "has no replicate 3"),
])
def test_bad_requests_are_one_clear_error(run, kwargs, error, message):
    args = {"level": 0, "rewind": "0it", **kwargs}
    with pytest.raises(error, match=message):
        instability(run.path, args.pop("level"), args.pop("rewind"), verbose=False, **args)


def test_a_run_without_a_finished_dense_level_is_refused(in_tmp, sample_data):
    run = find_ticket(tiny_config(levels=1), data=sample_data)
    (run.path / "replicate_0" / "level_0" / "ticket" / "manifest.json").unlink()  # the commit record: not finished
    with pytest.raises(ConfigError, match="Level 0 .* is not finished; finished levels: \\[1\\]"):
        instability(run.path, 0, "0it", verbose=False)


def test_rewind_auto_probes_the_dense_network_and_records_its_choice(in_tmp, sample_data):
    from tflottery import export_ticket
    from tflottery.tickets import read_ticket

    run = find_ticket(tiny_config(levels=1, rewind="auto", rewind_grid=["0it", "10it"]), data=sample_data)
    chosen = json.loads((run.path / "replicate_0" / "rewind.json").read_text())
    assert chosen["step"] in (0, 10) and chosen["probe"][0]["step"] == 0
    last = chosen["probe"][-1]
    assert chosen["copies"] == 4 and chosen["decided_by"] == "95% interval"
    assert chosen["stable"] == (last["verdict"] == "stable") == (last["interval"]["high"] < 2.0)
    level1 = run.replicate(0).load_level(1)
    assert level1.metrics["rewind_step"] == chosen["step"] and level1.metrics["start_step"] == chosen["step"]
    meta = read_ticket(export_ticket(run, 1, in_tmp / "t")).meta
    assert meta["rewind_step"] == chosen["step"] and meta["rewind_probe"]["step"] == chosen["step"]
    assert find_ticket(tiny_config(levels=1, rewind="auto", rewind_grid=["0it", "10it"]), data=sample_data).trained == []
