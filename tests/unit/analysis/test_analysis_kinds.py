"""The analysis registry's contract, parametrised over every registered kind: a kind is tested the moment its
line is added. Each names itself and the branch kinds it draws, writes PNG figures of its own name (never
another's file) for runs that hold its records and none for runs that do not; `tflottery plot` draws them all."""
import pytest

from tflottery.analysis.base import Runs
from tflottery.analysis.registry import ANALYSES, plot_runs
from tflottery.core.errors import ConfigError
from tflottery.engine.branches import BRANCHES

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tiny_run):
    from tflottery.engine.store import RunStore

    store = RunStore.open(tiny_run.path)
    return Runs([store], [store.name], [store.summary()])


def test_suffixes_are_unique_and_one_analysis_is_the_main_figure():
    suffixes = [cls.suffix for cls in ANALYSES.values()]
    assert len(set(suffixes)) == len(suffixes) and suffixes.count("") == 1 and suffixes[0] == ""


@pytest.mark.parametrize("name", sorted(ANALYSES))
def test_every_analysis_draws_its_own_figures_and_only_its_records(name, runs, tmp_path):
    cls = ANALYSES[name]
    assert cls.name == name and cls.description
    assert all(kind in BRANCHES for kind in cls.kinds)
    out = tmp_path / "fig.png"
    figures = cls().figures(runs, out, "early_stop_test_accuracy", branches=None, elsewhere=())
    held = cls.suffix == "" or any(r["branch"].split("-")[0] in cls.kinds for r in runs.summaries[0]) or (
        name == "untrained" and any(r.get("mask_at_init_accuracy") is not None for r in runs.summaries[0]))
    assert bool(figures) == held, (name, figures)
    for path in figures:
        assert path.parent == tmp_path and path.name.startswith(f"fig{cls.suffix}") and path.suffix == ".png"
        assert path.read_bytes()[:8] == PNG


def test_plot_draws_the_main_figure_first_and_skips_what_it_is_told_to(tiny_run, tmp_path):
    every = plot_runs([tiny_run.path], tmp_path / "a.png")
    assert every[0] == tmp_path / "a.png" and len(set(every)) == len(every)
    fewer = plot_runs([tiny_run.path], tmp_path / "b.png", skip=[n for n in ANALYSES if n != "levels"])
    assert fewer == [tmp_path / "b.png"]
    loss = plot_runs([tiny_run.path], tmp_path / "c.png", metric="final_test_loss")
    assert not any(p.name.startswith(f"c{cls.suffix}") for cls in ANALYSES.values() if cls.accuracy_only and cls.suffix
                   for p in loss)
    with pytest.raises(ConfigError, match="skip=\\['levels'\\]"):
        plot_runs([tiny_run.path], tmp_path / "d.png", skip=["levels"])
