"""Figures a researcher would publish: runs told apart by what differs, a dense reference, explained error bars."""
import pytest

from helpers import tiny_config
from tflottery import plots
from tflottery import find_ticket

pytestmark = pytest.mark.slow


def test_runs_are_named_by_what_differs_between_them():
    a = {"seed": 0, "pruning": {"rewind_step": 0, "rates": {"fc1/kernel": 0.2}}, "training": {"lr": 0.0012}}
    b = {"seed": 0, "pruning": {"rewind_step": 500, "rates": {"fc1/kernel": 0.2}}, "training": {"lr": 0.0012}}
    c = {"seed": 0, "pruning": {"rewind_step": 500, "rates": {"fc1/kernel": 0.2}}, "training": {"lr": 0.003}}
    assert plots.run_labels([a, b, c], ["x", "y", "z"]) == ["rewind_step=0, lr=0.0012", "rewind_step=500, lr=0.0012",
                                                            "rewind_step=500, lr=0.003"]
    assert plots.run_labels([a], ["only"]) == ["only"]


def test_plot_of_two_runs_has_colours_a_dense_line_a_caption_and_units(in_tmp, sample_data, monkeypatch):
    one = find_ticket(tiny_config(levels=1, branches=["reinit"], replicates=2), data=sample_data)
    two = find_ticket(tiny_config(levels=1, rewind="10it"), data=sample_data)
    seen = {}
    real = plots.by_remaining
    monkeypatch.setattr(plots, "by_remaining", lambda series, out, **kw: seen.update(series=series, **kw) or
                        real(series, out, **kw))
    path = plots.plot_runs([one.path, two.path], in_tmp / "fig.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert set(seen["series"]) == {"rewind_step=0: ticket", "rewind_step=0: reinit", "rewind_step=10: ticket",
                                   *(f"rewind_step={k}: {u}, untrained" for k in (0, 10)
                                     for u in ("mask x init", "signed constant"))}
    assert seen["styles"]["rewind_step=0: mask x init, untrained"]["linestyle"] == ":"  # supermasks beside tickets
    assert seen["styles"]["rewind_step=0: ticket"]["color"] != seen["styles"]["rewind_step=10: ticket"]["color"]
    assert seen["styles"]["rewind_step=0: reinit"]["linestyle"] == "--"
    assert set(seen["references"]) == {"rewind_step=0: dense network (level 0)", "rewind_step=10: dense network (level 0)"}
    assert "error bars: lowest to highest replicate (up to 2)" in seen["caption"]
    plots.plot_runs([one.path], in_tmp / "loss.png", metric="final_test_loss")
    assert seen["ylabel"].startswith("test loss") and seen["scale"] == 1.0
