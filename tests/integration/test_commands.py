"""The command line's everyday answers, in process: listing runs, --help with the values a command would
use, and a run that cannot go on is one line and exit 2."""
import json

import pytest

from tflottery.cli import main


def _cli(capsys, *args):
    code = 0
    try:
        main(list(args))
    except SystemExit as stop:
        code = stop.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_runs_lists_each_run_with_what_defines_it_and_where_it_stands(tiny_run, capsys):
    runs_dir = str(tiny_run.path.parent)
    code, out, _ = _cli(capsys, "runs", f"--runs_dir={runs_dir}")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    row = next(r for r in rows if r["run"] == tiny_run.path.name)
    assert code == 0 and row["dataset"] == "mnist" and row["strategy"] == "layerwise" and row["rewind"] == "0it"
    assert row["levels_done"] == {"0": 4} and row["levels_planned"] == 4 and row["state"] == "complete"
    assert row["last_remaining"] == pytest.approx(0.512, abs=1e-3) and len(row["last_accuracy"]) == 1
    assert f"{tiny_run.path.name}  mnist lenet_300_100 layerwise/unstructured rewind 0it seed 0  levels 4 of 4" in out
    store = tiny_run.store.lock()
    try:
        _, out, _ = _cli(capsys, "runs", f"--runs_dir={runs_dir}")
    finally:
        store.unlock()
    assert "running: process" in out
    code, _, err = _cli(capsys, "runs", "--runs_dir=/no/such/folder")
    assert code == 2 and "is not a folder" in err and "Traceback" not in err


def test_help_shows_the_values_the_command_would_run_with(capsys):
    _, out, _ = _cli(capsys, "find", "--dataset=fashion_mnist", "--strategy=global", "--rate=0.3", "--help")
    assert "--dataset='fashion_mnist'  (default 'mnist';" in out and "--rate=0.3  (default 0.2;" in out
    _, out, _ = _cli(capsys, "tune", "--levels=2", "--help")
    assert "--oracle: random, bayesian or hyperband" in out and "--levels=2  (default None;" in out
    _, out, err = _cli(capsys, "convert", "--help")  # fire's own help
    assert "--block_sparse" in out + err and "--min_agreement" in out + err


def test_recipe_help_shows_its_settings_with_paper_and_flags_applied(capsys, monkeypatch):
    from tflottery.recipes.common import cli

    monkeypatch.setattr("sys.argv", ["task2", "--paper", "--levels=3", "--help"])
    cli("task2")
    out = capsys.readouterr().out
    assert "Settings this command runs with (--paper, your flags, task2.toml):" in out
    assert "--run.plan.levels=3" in out and "--run.training.steps='50ep'" in out  # the flag over --paper's 15


def test_an_early_bird_run_that_draws_nothing_is_one_line_and_exit_2(in_tmp, capsys):
    code, _, err = _cli(capsys, "find", "--strategy=early_bird", "--target_remaining=0.1", "--steps=60it",
                        "--eval_every=15it", "--early_bird_every=10it", "--early_bird_threshold=0.01",
                        "--validation=400", "--verbose=false", "--jit_compile=false")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--early_bird_fallback=true" in err



def test_find_ends_with_the_verdict_and_summary_prints_it_for_any_run(tmp_path, sample_data, capsys):
    from helpers import tiny_config
    from tflottery import find_ticket

    config = tiny_config(levels=1, branches=["reinit"], replicates=2, population=16)
    config.runs_dir = str(tmp_path)
    run = find_ticket(config, data=sample_data)
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["measure"] == "early_stop_test_accuracy"
    assert [p["baseline"] for p in summary["paired"]] == ["dense", "reinit"]  # ticket - dense, ticket - reinit
    assert summary["verdict"].startswith("no verdict: n=2: a verdict needs at least 3 replicates")
    assert summary["levels"][0]["early_stop_test_accuracy"]["n"] == 2
    assert (run.path / "results.csv").read_text().startswith(
        "level,branch,remaining,remaining_of_all,n,early_stop_test_accuracy_mean")
    assert (run.path / "replicates.csv").read_text().startswith("replicate,level,branch")
    assert summary["verdict"] in (run.path / "report.md").read_text()
    code, out, _ = _cli(capsys, "summary", str(run.path))
    assert code == 0 and f"**Verdict:** {summary['verdict']}" in out
    assert "| 1 | reinit:" in out  # the paired difference of level 1
    code, _, err = _cli(capsys, "summary", str(tmp_path / "nothing"))
    assert code == 2 and "not a run directory" in err
