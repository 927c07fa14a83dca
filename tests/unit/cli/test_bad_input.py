"""Every bad input is one line on stderr and exit code 2, before any work: a walk over the command line.

Runs the CLI in this process (TensorFlow already loaded keeps the walk fast); test_cli.py checks
the same through a real `tflottery` process.
"""
import pytest

from tflottery.cli import main


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_run):
    """A finished tiny run (the session's, 3 levels) and tickets of it, to point bad flags at."""
    from tflottery import export_ticket

    where = tmp_path_factory.mktemp("made")
    run = tiny_run
    (where / "a_file").write_text("not a folder")
    ticket = export_ticket(run, 1, where / "ticket")
    other = export_ticket(run, 0, where / "other_ticket")
    import numpy as np

    np.savez(where / "wrong_shape.npz", x=np.zeros((4, 32, 32, 3), np.uint8))
    np.savez(where / "empty.npz", x=np.zeros((0, 28, 28, 1), np.uint8))
    np.savez(where / "floats.npz", x=np.full((4, 28, 28, 1), np.nan, np.float32))
    np.savez(where / "no_x.npz", y=np.zeros(4, np.int64))
    recipes = where / "recipes"
    recipes.mkdir()
    (recipes / "broken.toml").write_text("kind = \"imp\"\n[run\n")
    (recipes / "utf16.toml").write_bytes("kind = 'imp'".encode("utf-16"))
    (recipes / "strange.toml").write_text("kind = \"magic\"\n")
    (recipes / "nosides.toml").write_text("kind = \"transfer\"\npairs = [[\"a\", \"b\"]]\n[a.data]\nlabels = [0, 1]\n"
                                         "[b.data]\nlabels = [2, 3]\n")
    (recipes / "missing.toml").write_text("kind = \"transfer\"\npairs = [[\"a\", \"c\"]]\n[sides]\na = \"A\"\n"
                                         "c = \"C\"\n[a.data]\nlabels = [0, 1]\n")
    (recipes / "empty.toml").write_text("")
    (recipes / "kindint.toml").write_text("kind = 1\n")
    (recipes / "unknownkey.toml").write_text("kind = \"imp\"\nfrobnicate = 3\n")
    (recipes / "levels.toml").write_text("kind = \"imp\"\n[run.plan]\nlevels = \"many\"\n")
    (recipes / "pairsstr.toml").write_text("kind = \"transfer\"\npairs = \"a,b\"\n[sides]\na = \"A\"\nb = \"B\"\n"
                                          "[a.data]\nlabels = [0, 1]\n[b.data]\nlabels = [2, 3]\n")
    (recipes / "section.toml").write_text("kind = \"imp\"\n[run.nosuch]\nx = 1\n")
    (recipes / "lr.toml").write_text("kind = \"imp\"\n[run.training]\nlr = -1\n")
    return {"RUN": str(run.path), "TICKET": str(ticket), "OTHER": str(other), "FILE": str(where / "a_file"),
            "WHERE": str(where)}


FIND = [
    (["--warmup=500it"], r"training.warmup=500it \(step 500\) is not before the end of training"),
    (["--milestones=['10it','40it']"], r"training.milestones has 40it \(step 40\) is not before the end"),
    (["--capture=['30it']"], r"plan.capture has 30it, not before the end of the dense run"),
    (["--conv_rate=0.2"], r"pruning.conv_rate=0.2 is for conv layers, and this model has none"),
    (["--strategy=global", "--rate=0"], r"pruning.rate=0 removes nothing"),
    (["--dense_rate=0.999", "--levels=3"], r"Level 2 of the plan leaves fc1, fc2 with no weights"),
    (["--levls=3"], "Unknown flag --levls: it is neither a config field"),
    (["--executor=slurm"], r"--executor='slurm' is not an executor; choose one of \['local', 'processes', 'ray'\]"),
    (["--executor=local", "--executor.processes=2"], r"--executor=local takes no options; got --executor.processes"),
    (["--executor=processes", "--executor.address=auto"],
     r"--executor=processes takes --executor.processes; got --executor.address"),
    (["--executor=processes", "--executor.processes=0"], r"--executor.processes=0: give a number of processes"),
    (["--ray_address=auto"], "goes with --executor=ray"),
    (["--levels=abc"], "plan.levels='abc' must be an integer"),
    (["--levels=-1"], r"plan.levels=-1 must lie in \[0, 200\]"),
    (["--levels=2.5"], "must be a whole number"),
    (["--levels=3", "--target_remaining=0.1"], "not both"),
    (["--target_remaining=1.5"], r"target_remaining=1.5 must lie in \(0, 1\)"),
    (["--lr=nan"], "training.lr='nan' must be a number"),
    (["--lr=1e999"], "training.lr=inf must be a finite number"),
    (["--lr=-1"], r"training.lr=-1.0 must lie in \(0, 10\]"),
    (["--batch_size=0"], "batch_size=0 must be >= 1"),
    (["--batch_size=100000"], "training examples for batch_size=100000"),
    (["--dense_rate=1.2"], r"dense_rate=1.2 must lie in \[0, 1\)"),
    (["--dense_rate=-0.1"], r"dense_rate=-0.1 must lie in \[0, 1\)"),
    (["--rate=0.3"], "layerwise does not use rate"),
    (["--strategy=global", "--conv_rate=0.2"], "global does not use conv_rate"),
    (["--strategy=magic"], "unknown: use layerwise or global"),
    (["--seed=-1"], r"seed=-1 must lie in \[0, 2\*\*31\)"),
    (["--seed=abc"], "seed='abc' must be an integer"),
    (["--replicates=0"], r"replicates=0 must lie in \[1, 1000\]"),
    (["--labels=[3,3]"], "repeats a class"),
    (["--labels=[3,12]"], r"classes are 0..9"),
    (["--labels=[3]"], "fewer than 2 classes"),
    (["--dataset=imagenet"], "Unknown dataset 'imagenet'"),
    (["--source=web"], "source='web' is unknown"),
    (["--rewind=soon"], "is not a step"),
    (["--rewind=50ep"], "is not before the end of training"),
    (["--steps=0it"], "zero steps"),
    (["--optimizer=rmsprop"], "use adam or sgd"),
    (["--momentum=0.9"], "sgd only"),
    (["--precision=fp8"], "use mixed_float16 or mixed_bfloat16"),
    (["--branches=[\"shuffle\"]"], "per-level branches are reinit, random_prune"),
    (["--branches=reinit"], "must be a list"),
    (["--unpruned=[\"fc9\"]"], "no prunable layer named 'fc9'"),
    (["--model=alexnet"], "Unknown model 'alexnet'"),
    (["--validation=99999"], "more than half"),
    (["--fraction=0"], r"fraction=0.0 must lie in \(0, 1\]"),
    (["--fraction=0.5", "--fraction_part=2"], "fraction_part=2 does not exist"),
    (["--runs_dir=FILE"], "is a file"),
    (["--runs_dir="], "runs_dir is empty"),
    (["--runs_dir=FILE/child"], "is a file, not a folder"),
    (["--runs_dir=/proc/self/runs"], "lies on a virtual file system"),
    (["--runs_dir=" + "x" * 300], "longer than this file system allows"),
    (["--runs_dir=TICKET/runs"], "lies inside the ticket"),
    (["--levels=1", "--levels=2"], "--levels is given twice"),
    (["--eval_every=0it"], "never evaluates"),
    (["--precision=mixed_float16"], "on a CPU use --precision=mixed_bfloat16"),
    (["--steps=99999999999999999999it"], "more than 1,000,000,000"),
    (["--steps=20000000it"], "or --force=true if you mean it"),
    (["--dry_run=maybe"], "dry_run='maybe' must be true or false"),
    (["--jit_compile=maybe"], "jit_compile='maybe' must be auto, true or false"),
    (["--data_dir=/nonexistent"], "data.data_dir='/nonexistent' is not a folder here"),
    (["--branches=[{\"supermask\": {\"init\": \"zeros\"}}]"], "supermask init='zeros'"),
    (["surplus"], "takes 0 positional argument"),
]
OTHERS = [
    (["frobnicate"], "Unknown command 'frobnicate'"),
    (["worker"], "worker: name the run"),
    (["worker", "RUN", "--levels=4"], "not both"),
    (["worker", "no/such/run"], "is not a run directory"),
    (["worker", "RUN", "--wait=-1"], "--wait=-1.0 must"),
    (["worker", "--levls=3"], "Unknown flag --levls"),
    (["worker", "--check_locks=FILE"], "check_locks"),
    (["worker", "--runs_dir=no/such/folder", "--levels=1"], "runs_dir='no/such/folder' is not a folder here"),
    (["verify", "no/such/run"], "is not a run directory"),
    (["status", "no/such/run"], "is not a run directory"),
    (["export", "no/such/run"], "is not a run directory"),
    (["export", "RUN", "--level=9"], r"Level 9 \(ticket\) .* is not finished"),
    (["export", "RUN", "--replicate=5"], "has no replicate 5"),
    (["export", "RUN", "--levle=1"], "Unknown flag --levle"),
    (["export", "RUN", "--out=FILE", "--overwrite"], "is not a ticket directory"),
    (["export", "RUN", "--out=RUN", "--overwrite"], "is not a tflottery ticket"),
    (["export", "RUN", "--out=TICKET"], "pass --overwrite"),
    (["transfer", "no/such"], "neither a run directory"),
    (["transfer", "TICKET", "--dense_rate=0.3"], "transfer takes data and training flags"),
    (["transfer", "TICKET", "--labels=[3,3]"], "repeats a class"),
    (["transfer", "RUN", "--level=7"], "Level 7 .* is not finished"),
    (["convert", "no/such"], "is not a ticket"),
    (["convert", "TICKET", "--mode=float"], "Unknown flag --mode"),
    (["convert", "TICKET", "--modes=fp16"], "Unknown TFLite mode"),
    (["convert", "TICKET", "--min_agreement=2"], r"min_agreement=2.0 must lie in \[0.0, 1.0\]"),
    (["convert", "TICKET", "--qat_steps=-5"], "qat_steps=-5 must be an integer >= 0"),
    (["convert", "TICKET", "--out=FILE"], "is a file"),
    (["convert", "TICKET", "--modes=block_float"], "not made of 1x4 blocks"),
    (["find", "--structure={\"block\": [1, 16]}"], "does not divide layer fc2"),
    (["find", "--strategy=block"], "is spelled --strategy=layerwise --structure="),
    (["plot"], "plot needs at least one run directory"),
    (["plot", "no/such/run"], "is not a run directory"),
    (["plot", "RUN", "--metric=nosuch"], "metric='nosuch' is not recorded"),
    (["instability", "no/such/run"], "is not a run directory"),
    (["instability", "RUN", "--level=7"], r"Level 7 .* is not finished; finished levels: \[0, 1, 2, 3\]"),
    (["instability", "RUN", "--copies=1"], "copies=1 must be an integer >= 2"),
    (["instability", "RUN", "--alphas=2"], "alphas=2 must be an integer >= 3"),
    (["instability", "RUN", "--rewind=30it"], "beyond the training length"),
    (["instability", "RUN", "--rewind=10it"], "was not kept"),
    (["instability", "RUN", "--level=1", "--rewind=10it"], "found by IMP rewinding to step 0"),
    (["instability", "RUN", "--threshold=0"], "must be a positive number"),
    (["analyze", "nosuch", "RUN"], "the analyses are: levels"),
    (["analyze", "levels", "no/such/run"], "is not a run directory"),
    (["analyze", "levels", "RUN", "--alphas=2"], r"alphas=2 must lie in \[3, 101\]"),
    (["summary", "RUN", "--margin=-1"], r"--margin=-1.0 must"),
    (["compare", "RUN@1"], "at least two"),
    (["compare", "RUN@1", "RUN@5"], r"Level 5 \(ticket\) .* is not finished"),
    (["compare", "RUN@1", "no/such"], "is not a ticket"),
    (["find", "--strategy=early_bird", "--levels=3"], "give --target_remaining"),
    (["find", "--strategy=early_bird", "--target_remaining=0.1", "--early_bird_window=1"], "window=1 must be"),
    (["find", "--early_bird_threshold=0.5"], "layerwise does not use early_bird_threshold"),
    (["tune", "--space=not json"], "is not JSON"),
    (["tune", "--oracle=grid"], "Unknown oracle"),
    (["tune", "--levls=3"], "Unknown flag --levls"),
    (["--version", "--levels=3"], None),
    (["export", "RUN", "--level=1", "--branch=../../replicate_0/level_2/ticket"], "cannot name a file or folder"),
    (["export", "RUN", "--out=TICKET", "--overwrite=false"], "pass --overwrite"),
    (["export", "RUN", "--out=TICKET", "--overwrite=no"], "pass --overwrite"),
    (["export", "RUN", "--out=TICKET", "--overwrite=maybe"], "overwrite='maybe' must be true or false"),
    (["export", "RUN", "--out=TICKET/inner"], "lies inside .*a ticket"),
    (["transfer", "TICKET", "--reinit=maybe"], "reinit='maybe' must be true or false"),
    (["transfer", "TICKET", "--trust_code=false", "--runs_dir=WHERE/r", "--labels=[3,3]"], "repeats a class"),
    (["transfer", "TICKET", "--trust_code=yes"], "must be exactly true or false"),
    (["transfer", "TICKET", "--runs_dir=FILE/x"], "is a file, not a folder"),
    (["convert", "TICKET", "--trust_code=1"], "must be exactly true or false"),
    (["convert", "TICKET", "--modes=float", "--out=OTHER"], "lies inside another ticket"),
    (["convert", "TICKET", "--modes=float", "--out=RUN"], "lies inside the run"),
    (["convert", "TICKET", "--modes=int8", "--representative=WHERE/wrong_shape.npz"], "uint8 image of shape"),
    (["convert", "TICKET", "--modes=int8", "--representative=WHERE/empty.npz"], "at least one uint8 image"),
    (["convert", "TICKET", "--modes=int8", "--representative=WHERE/floats.npz"], "uint8 image of shape"),
    (["convert", "TICKET", "--modes=int8", "--representative=WHERE/no_x.npz"], "has no array 'x'"),
    (["convert", "TICKET", "--modes=int8", "--representative="], "is not a file"),
    (["plot", "RUN", "--out=RUN"], "is a folder: name the figure's file"),
    (["plot", "RUN", "--untrained=maybe"], "untrained='maybe' must be true or false"),
    (["instability", "RUN", "--copies=100000"], "at most 64 unless you mean it"),
    (["instability", "RUN", "--same_order=maybe"], "same_order='maybe' must be true or false"),
]
RECIPES = [
    ("broken", "is not valid TOML"),
    ("utf16", "is not UTF-8 text"),
    ("strange", "kind='magic' is unknown"),
    ("nosides", "a transfer recipe names each side in a \\[sides\\] table"),
    ("missing", "pairs names the side 'c', which has no table of its own flags"),
    ("../../etc", "recipe='../../etc' cannot name a file or folder"),
    ("empty", "names no kind: write kind"),
    ("kindint", "kind=1 is unknown"),
    ("unknownkey", r"unknown key\(s\) \['frobnicate'\]"),
    ("levels", "plan.levels='many' must be an integer"),
    ("pairsstr", "pairs='a,b' must list \\[source, target\\] sides"),
    ("section", r"run: unknown field\(s\) \['nosuch'\]"),
    ("lr", r"training.lr=-1.0 must lie in \(0, 10\]"),
]


def _walk(made, args, message, in_tmp, capsys, entry=None):
    import re

    for placeholder, path in made.items():
        args = [a.replace(placeholder, path) for a in args]
    before = sorted(p.name for p in in_tmp.iterdir())
    written = _files(made["WHERE"]) + _files(made["RUN"])
    if message is None:  # not an error: --version answers and does nothing else
        (entry or main)(args)
        assert capsys.readouterr().out.startswith("tflottery 0.")
        return
    with pytest.raises(SystemExit) as exit_:
        (entry or main)(args)
    assert _files(made["WHERE"]) + _files(made["RUN"]) == written  # nothing written: no run, ticket or file
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2, err
    assert len(err) == 1 and err[0].startswith("tflottery: error: "), err
    assert re.search(message, err[0]), err[0]
    assert sorted(p.name for p in in_tmp.iterdir()) == before  # nothing was written


@pytest.mark.parametrize("args,message", FIND)
def test_find_refuses_bad_flags_in_one_line(made, in_tmp, capsys, args, message):
    given = {a[2:].split("=")[0] for a in args if a.startswith("--")}
    defaults = [f"--{k}={v}" for k, v in (("validation", 400), ("steps", "30it")) if k not in given]
    _walk(made, ["find", *defaults, *args], message, in_tmp, capsys)


@pytest.mark.parametrize("args,message", OTHERS)
def test_other_commands_refuse_bad_input_in_one_line(made, in_tmp, capsys, args, message):
    _walk(made, args, message, in_tmp, capsys)


@pytest.mark.parametrize("recipe,message", RECIPES)
def test_recipe_files_that_cannot_be_read_are_one_line(made, in_tmp, capsys, monkeypatch, recipe, message):
    from tflottery.recipes.common import cli

    monkeypatch.setenv("TFLOTTERY_RECIPES", made["WHERE"] + "/recipes")
    monkeypatch.setattr("sys.argv", [f"tflottery.recipes.{recipe}"])  # no flags: the recipe as written
    _walk(made, [], message, in_tmp, capsys, entry=lambda args: cli(recipe))


def _files(where):
    from pathlib import Path

    return sorted((p.as_posix(), p.stat().st_mtime_ns) for p in Path(where).rglob("*") if p.name != ".lock")
