"""Figures a reviewer accepts: the experiment apart from the analyses, bands that say what they span, runs
told apart in the user's own flags, legends that never cover the data."""
import pytest

from helpers import tiny_config
from tflottery import find_ticket, plots
from tflottery.analysis.registry import plot_runs

pytestmark = pytest.mark.slow


def _config(strategy="layerwise", seed=0, settings=None, structure=None):
    return {"seed": seed, "data": {"dataset": "fashion_mnist", "source": "idx"},
            "pruning": {"strategy": strategy, "settings": settings or {}, "structure": structure, "rewind": "0it"},
            "training": {"lr": 0.0012, "verbose": True, "eval_every": "1ep"}, "plan": {"levels": 3}, "runs_dir": "x"}


def test_runs_are_named_by_what_differs_in_the_flags_a_user_typed():
    runs = [_config(), _config(settings={"dense_rate": 0.3}),
            _config("global", structure={"block": [1, 4]}, settings={"rate": 0.3})]
    assert [label.replace("\n", " ") for label in plots.run_labels(runs, ["a", "b", "c"])] == [
        "strategy=layerwise, structure=none, dense_rate=0.2", "strategy=layerwise, structure=none, dense_rate=0.3",
        "strategy=global, structure=blocks 1x4, rate=0.3"]  # the block as typed, defaults filled in
    assert plots.run_labels([_config(seed=0), _config(seed=1)], ["a", "b"]) == ["seed=0", "seed=1"]
    assert plots.run_labels([_config()], ["only"]) == ["only"]
    assert plots.run_labels([_config(), {**_config(), "runs_dir": "y", "plan": {"levels": 9}}], ["a", "b"]) == ["a", "b"]


def _legends_outside(fig) -> bool:
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None and legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer)):
            return False
    return True


def test_one_run_with_analyses_gets_the_experiment_and_its_analyses_apart(in_tmp, sample_data, monkeypatch):
    from tflottery import transfer

    run = find_ticket(tiny_config(levels=2, branches=["reinit", "random_prune"], replicates=2), data=sample_data)
    transfer(run.path, {"labels": [5, 6, 7, 8, 9], "validation": 200},
             {"steps": "30it", "eval_every": "15it", "verbose": False})
    figures, outside = {}, {}
    real = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.update({path.name: fig}) or outside.update(
        {path.name: _legends_outside(fig)}) or real(fig, path))
    paths = plot_runs([run.path], in_tmp / "fig.png")
    assert [p.name for p in paths] == ["fig.png", "fig_untrained.png", "fig_transfer.png"]
    main = figures["fig.png"].axes[0]
    labels = main.get_legend_handles_labels()[1]
    assert labels == ["ticket (IMP, rewound)", "reinit (same mask, new init)", "random pruning (same sparsity)",
                      "dense network (level 0)"]  # no transfer, copy or untrained series beside the baselines
    assert len(main.collections) >= 3  # a band per series: two replicates
    texts = " ".join(t.get_text() for t in main.texts)
    assert "Lines: mean over 2 replicates; bands: 95% t-interval of the mean." in texts
    transfer_axes = figures["fig_transfer.png"].axes[0]
    assert set(transfer_axes.get_legend_handles_labels()[1]) == {"transferred ticket", "reinit control"}
    assert "mnist labels 5,6,7,8,9" in transfer_axes.get_title()
    assert all(outside.values()) and len(outside) == 3
    for path in paths:
        assert path.read_bytes()[:4] == b"\x89PNG"


def test_many_runs_get_a_compact_legend_outside_the_axes(in_tmp, sample_data, monkeypatch):
    runs = [find_ticket(tiny_config(levels=1, branches=["reinit"], **({"dense_rate": r} if r else {})),
                        data=sample_data).path for r in (None, 0.3, 0.4, 0.5)]
    figures, outside = {}, {}
    real = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.update({path.name: fig}) or outside.update(
        {path.name: _legends_outside(fig)}) or real(fig, path))
    plot_runs(runs, in_tmp / "many.png", untrained=False)
    fig = figures["many.png"]
    labels = fig.axes[0].get_legend().get_texts()
    assert [t.get_text() for t in labels] == ["dense_rate=0.2", "dense_rate=0.3", "dense_rate=0.4", "dense_rate=0.5",
                                              "ticket (IMP, rewound)", "reinit (same mask, new init)",
                                              "dense network (level 0)"]  # 4 runs x 2 branches in 7 entries
    assert outside["many.png"]
    plot_runs(runs[:1], in_tmp / "loss.png", metric="final_test_loss")
    assert figures["loss.png"].axes[0].get_ylabel().startswith("test loss")
