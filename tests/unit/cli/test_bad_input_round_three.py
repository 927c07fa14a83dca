"""Round three of bad input: 98 written for the run-integrity issue across the command line, the Python API and run
folders (recipes: `test_bad_input.py`'s RECIPES). Each is one line naming the problem, exit code 2 (or a
TflotteryError of one line from Python), before any training; a damaged run folder is never read as finished.
"""
import json
import os
import re
import shutil

import pytest

from tflottery.cli import main
from tflottery.core.errors import TflotteryError

CLI = [
    (["find", "--validation=400", "--steps=30it", "--lease=0"], 'lease=0.0 must lie in [1.0, inf]: seconds a holder may go wi'),
    (["find", "--validation=400", "--steps=30it", "--lease=abc"], "lease='abc' must be a number."),
    (["find", "--validation=400", "--steps=30it", "--lease=inf"], "lease='inf' must be a number."),
    (["find", "--validation=400", "--steps=30it", "--tries=0"], 'tries=0 must lie in [1, 100].'),
    (["find", "--validation=400", "--steps=30it", "--tries=1.5"], 'tries=1.5 must be a whole number.'),
    (["find", "--validation=400", "--steps=30it", "--tries=1000"], 'tries=1000 must lie in [1, 100].'),
    (["find", "--validation=400", "--steps=30it", "--retry_failed=maybe"], "retry_failed='maybe' must be true or false (or 1/0)."),
    (["worker", "RUN", "--lease=-5"], 'lease=-5.0 must lie in [1.0, inf]: seconds a holder may go w'),
    (["worker", "RUN", "--tries=0"], 'tries=0 must lie in [1, 100].'),
    (["worker", "RUN", "--retry_failed=sometimes"], "retry_failed='sometimes' must be true or false (or 1/0)."),
    (["worker", "RUN", "--create=perhaps"], "create='perhaps' must be true or false (or 1/0)."),
    (["worker", "RUN", "--hold=-1", "--check_locks=WHERE"], '--hold=-1.0 must lie in [0.0, inf].'),
    (["find", "--validation=400", "--steps=30it", "--population=0"], 'plan.population=0 must be auto or a number of units in [1, 4'),
    (["find", "--validation=400", "--steps=30it", "--population=-2"], 'plan.population=-2 must be auto or a number of units in [1,'),
    (["find", "--validation=400", "--steps=30it", "--population=big"], "plan.population='big' must be auto or a number of units in ["),
    (["find", "--validation=400", "--steps=30it", "--seed=1.5"], 'run.seed=1.5 must be a whole number.'),
    (["find", "--validation=400", "--steps=-5it"], "training.steps='-5it' is not a step: write iterations and/or"),
    (["find", "--validation=400", "--steps=3parsecs"], "training.steps='3parsecs' is not a step: write iterations an"),
    (["find", "--validation=-1", "--steps=30it"], 'data.validation=-1 must be >= 0 examples.'),
    (["find", "--validation=400", "--steps=30it", "--dataset=../etc"], "Unknown dataset '../etc'; available: cifar10, cifar100, fash"),
    (["find", "--validation=400", "--steps=30it", "--model=../../x"], "model.name='../../x' cannot name a file or folder: use lette"),
    (["find", "--validation=400", "--steps=30it", "--rewind=-1it"], "pruning.rewind='-1it' is not a step: write iterations and/or"),
    (["find", "--validation=400", "--steps=30it", "--structure=nosuch"], "pruning.structure kind 'nosuch' is unknown: use unstructure"),
    (["find", "--validation=400", "--steps=30it", "--branches=[\"reinit\",\"reinit\"]"], "plan.branches=['reinit', 'reinit'] names a branch twice."),
    (["find", "--validation=400", "--steps=30it", "--labels=[]"], 'data.labels=[] keeps fewer than 2 classes: a classifier need'),
    (["find", "--validation=400", "--steps=30it", "--labels=[-1,2]"], 'data.labels=[-1, 2]: classes are numbered from 0.'),
    (["find", "--validation=400", "--steps=30it", "--optimizer=sgd", "--momentum=2"], 'training.momentum=2.0 must lie in [0, 1).'),
    (["find", "--validation=400", "--steps=30it", "--weight_decay=-1"], 'training.weight_decay=-1.0 must lie in [0, 1].'),
    (["find", "--validation=400", "--steps=30it", "--executor=ray", "--executor.connect_timeout=0"], '--executor.connect_timeout=0.0: give seconds in (0, 3600], e'),
    (["find", "--validation=400", "--steps=30it", "--executor=ray", "--executor.connect_timeout=abc"], "executor.connect_timeout='abc' must be a number."),
    (["find", "--validation=400", "--steps=30it", "--executor=ray", "--executor.gpus=-1"], '--executor.gpus=-1: give the GPUs each task takes, 0 to 64 ('),
    (["find", "--validation=400", "--steps=30it", "--executor=ray", "--executor.address=nohostport"], "--executor.address='nohostport': give host:port (the head's"),
    (["find", "--validation=400", "--steps=30it", "--verbose=2"], 'training.verbose=2 must be true or false (or 1/0).'),
    (["find", "--validation=400", "--steps=30it", "--data_dir=WHERE/a_file"], 'is not a folder here: give the folder that holds the prepare'),
    (["find", "--validation=400", "--steps=30it", "--lr=0"], 'training.lr=0.0 must lie in (0, 10]: the peak learning rate,'),
    (["find", "--validation=400", "--steps=30it", "--batch_size=2.5"], 'training.batch_size=2.5 must be a whole number.'),
    (["find", "--validation=400", "--steps=30it", "--eval_every=-1it"], "training.eval_every='-1it' is not a step: write iterations a"),
    (["find", "--validation=400", "--steps=30it", "--baseline_levels=[7]"], "plan.baseline_levels has [7], past the plan's last level (5)"),
    (["find", "--validation=400", "--steps=30it", "--levels=2", "--structure={\"nm\": [4, 2]}"], "pruning.structure={'nm': [4, 2]} names no single structure:"),
    (["find", "--validation=400", "--steps=30it", "--structure={\"block\": [0, 4]}"], 'pruning.structure block=[0, 4] must be two positive sizes [r'),
    (["find", "--validation=400", "--steps=30it", "--fraction=0.5", "--fraction_part=-1"], 'data.fraction_part=-1 does not exist for fraction=0.5: use 0'),
    (["status", "WHERE/a_file"], 'is not a run directory (no spec.json): pass a folder that `t'),
    (["status", "RUN", "RUN"], 'status takes 1 positional argument(s) (run), got 2:'),
    (["verify", "WHERE"], 'is not a run directory (no spec.json): pass a folder that `t'),
    (["verify", "TICKET"], 'is not a run directory (no spec.json): pass a folder that `t'),
    (["summary", "no/such/run"], 'is not a run directory (no spec.json): pass a folder that `t'),
    (["summary", "TICKET"], 'is not a run directory (no spec.json): pass a folder that `t'),
    (["runs", "--runs_dir=WHERE/a_file"], 'is not a folder: name the folder `tflottery find` wrote its'),
    (["export", "RUN", "--level=-1"], 'is not finished; finished levels:'),
    (["export", "RUN", "--level=abc"], 'is not finished; finished levels:'),
    (["export", "RUN", "--branch=nosuch"], 'is not finished; finished levels:'),
    (["transfer", "RUN", "--replicate=5"], 'has no replicate 5; replicates: [0].'),
    (["transfer", "RUN", "--head=sideways"], "head='sideways': use fresh, fresh_pruned, reuse, reuse_mask"),
    (["transfer", "RUN", "--dataset=nosuch"], "Unknown dataset 'nosuch'; available: cifar10, cifar100, fash"),
    (["transfer", "RUN", "--level=-1"], 'is not finished; finished levels:'),
    (["transfer", "RUN", "--queue=perhaps"], "queue='perhaps' must be true or false (or 1/0)."),
    (["transfer", "RUN", "--seed=-3"], 'seed=-3 must lie in [0, 2147483647].'),
    (["convert", "TICKET", "--modes=[]"], 'No TFLite mode given: choose from float, sparse, int8, int8_'),
    (["convert", "TICKET", "--modes=float", "--modes=int8"], '--modes is given twice: give each flag once.'),
    (["instability", "RUN", "--copies=0"], 'copies=0 must be an integer >= 2: instability compares at le'),
    (["instability", "RUN", "--replicate=4"], 'has no replicate 4; replicates: [0].'),
    (["plot", "RUN", "--out=/proc/self/x.png"], "the figure's folder='/proc/self' lies on a virtual file syst"),
    (["data", "--nosuch=1"], 'Unknown flag --nosuch for data: it takes --data_dir.'),
]
API = [
    ('tflottery.find_ticket(42)', 'config must be a RunConfig or a dict of its sections, got in'),
    ('tflottery.find_ticket({"plan": {"levels": "x"}})', "plan.levels='x' must be an integer."),
    ('tflottery.find_ticket(cfg, lease=0)', 'lease=0.0 must lie in [1.0, inf]: seconds a holder may go wi'),
    ('tflottery.find_ticket(cfg, tries="2")', "tries='2' must be an integer."),
    ('tflottery.find_ticket(cfg, executor="ray", executor_options="auto")', "executor_options='auto' must be a dict of the executor's opt"),
    ('tflottery.find_ticket(cfg, callbacks=42)', 'callbacks=42 must be a list of tf_keras callbacks (keras.cal'),
    ('tflottery.run_worker(42)', 'config must be a RunConfig or a dict of its sections, got in'),
    ('tflottery.run_worker("no/such/run")', 'is not a run directory (no spec.json): pass a folder that `t'),
    ('tflottery.run_worker(RUN, lease=-1)', 'lease=-1.0 must lie in [1.0, inf]: seconds a holder may go w'),
    ('tflottery.run_worker(RUN, tries=0)', 'tries=0 must lie in [1, 100].'),
    ('tflottery.load_ticket("no/such")', 'is not a ticket: a ticket is a directory (made by `tflottery'),
    ('tflottery.load_ticket(42)', "A ticket is a directory's path, got 42."),
    ('tflottery.export_ticket(RUN, level="1")', 'is not finished; finished levels:'),
    ('tflottery.export_ticket(RUN, level=1, replicate=-1)', 'has no replicate -1; replicates: [0].'),
    ('tflottery.transfer(RUN, level=99)', 'is not finished; finished levels:'),
    ('tflottery.transfer(RUN, head=3)', 'head=3: use fresh, fresh_pruned, reuse, reuse_mask (fresh: a'),
    ('tflottery.run_status(42)', 'run=42 is not a path: pass a run directory, e.g. runs/lenet_'),
    ('tflottery.plan_ticket({"plan": {"levels": -3}})', 'plan.levels=-3 must lie in [0, 200]: level 0 is the dense ne'),
    ('tflottery.api.verify_run("no/such")', 'is not a run directory (no spec.json): pass a folder that `t'),
]
RUN_FOLDERS = [
    ("open(R + '/spec.json', 'w').write('[1, 2]')",
     ['status', 'RUN'], 'has run layout None'),
    ('open(R + \'/plan.json\', \'w\').write(\'{"levels": [0\')',
     ['status', 'RUN'], 'is not valid JSON'),
    ("os.makedirs(R + '/.units/transfers', exist_ok=True); open(R + '/.units/transfers/x.json', 'w').write('{garbage')",
     ['worker', 'RUN'], 'is not a transfer request (not JSON): delete it and request'),
    ("m = json.load(open(R + '/replicate_0/level_1/ticket/manifest.json')); m['files']['../../spec.json'] = {'bytes': 1, 'sha256': 'x'}; json.dump(m, open(R + '/replicate_0/level_1/ticket/manifest.json', 'w'))",
     ['summary', 'RUN'], "lists '../../spec.json', not a file of this folder: replicat"),
    ("shutil.copy(R + '/replicate_0/level_0/ticket/manifest.json', R + '/replicate_0/level_1/ticket/manifest.json')",
     ['export', 'RUN', '--level=1', '--out=WHERE/t2'], 'is the manifest of'),
    ("os.remove(R + '/config.json')",
     ['status', 'RUN'], 'config.json: No such file or directory (nothing half-written'),
    ("shutil.rmtree(R + '/.units', ignore_errors=True); open(R + '/.units', 'w').write('x')",
     ['worker', 'RUN'], '.units: Not a directory (nothing half-written is kept; fix t'),
    ("os.makedirs(R + '/.units', exist_ok=True); shutil.rmtree(R + '/.units/workers', ignore_errors=True); open(R + '/.units/workers', 'w').write('x')",
     ['worker', 'RUN'], 'workers: Not a directory (nothing half-written is kept; fix'),
    ("open(R + '/replicate_0/level_1/ticket/metrics.json', 'w').write(json.dumps({'level': 1}))",
     ['summary', 'RUN'], 'is not the file its unit wrote'),
    ("os.makedirs(R + '/replicate_0/level_1/ticket/extra'); os.remove(R + '/replicate_0/level_1/ticket/history.csv')",
     ['verify', 'RUN'], "`tflottery find` with the run's flags, or `tflottery worker"),
    ("open(R + '/spec.json', 'w').write(json.dumps({'layout': 99}))",
     ['worker', 'RUN'], 'has run layout 99'),
    ("open(R + '/numerics.json', 'w').write(json.dumps({'xla': 'yes'}))",
     ['worker', 'RUN'], "is damaged: 'xla' must be true or false. Restore it from the"),
    ('open(R + \'/model.json\', \'w\').write(\'{"class_name": "Dense"}\')',
     ['transfer', 'RUN', '--labels=[0,1]', '--steps=30it'], "is not the run's architecture"),
    ("open(R + '/data.json', 'w').write('[')",
     ['export', 'RUN', '--level=1', '--out=WHERE/t3'], 'is not valid JSON'),
    ('open(R + \'/config.json\', \'w\').write(\'{"plan": 5}\')',
     ['worker', 'RUN'], 'is not a configuration this run can use'),
    ('open(R + \'/plan.json\', \'w\').write(\'{"levels": "x"}\')',
     ['status', 'RUN'], "is not a run's plan (levels and remaining): the file was alt"),
]


def _fill(text: str, places: dict) -> str:
    for placeholder, value in places.items():
        text = text.replace(placeholder, value)
    return text


@pytest.fixture(scope="module")
def places(tmp_path_factory, tiny_run):
    from tflottery import export_ticket

    where = tmp_path_factory.mktemp("round_three")
    (where / "a_file").write_text("not a folder")
    return {"RUN": str(tiny_run.path), "TICKET": str(export_ticket(tiny_run, 1, where / "ticket")), "WHERE": str(where)}


def _one_line(capsys, call, message):
    with pytest.raises(SystemExit) as exit_:
        call()
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("tflottery")]
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("tflottery: error: "), err
    assert message in err[0], err[0]


def test_there_are_at_least_sixty():
    assert len(CLI) + len(API) + len(RUN_FOLDERS) >= 60


@pytest.mark.parametrize("args,message", CLI, ids=[" ".join(a)[34:110] for a, _ in CLI])
def test_the_command_line_refuses_in_one_line(places, in_tmp, capsys, args, message):
    args = [_fill(a, places) for a in args]
    before = sorted(p.name for p in in_tmp.iterdir())
    _one_line(capsys, lambda: main(args), message)
    assert sorted(p.name for p in in_tmp.iterdir()) == before  # nothing written


@pytest.mark.parametrize("code,message", API, ids=[c[:60] for c, _ in API])
def test_the_python_api_refuses_in_one_line(places, in_tmp, code, message):
    import tflottery
    import tflottery.api
    from helpers import tiny_config

    config = tiny_config(levels=1)
    config.runs_dir = str(in_tmp / "runs")
    with pytest.raises(TflotteryError) as error:
        exec(code, {"tflottery": tflottery, "RUN": places["RUN"], "TICKET": places["TICKET"], "cfg": config})
    assert message in str(error.value) and "\n" not in str(error.value), str(error.value)
    assert not (in_tmp / "runs").exists()  # nothing trained


@pytest.mark.parametrize("edit,args,message", RUN_FOLDERS, ids=[e[:60] for e, _, _ in RUN_FOLDERS])
def test_a_damaged_run_folder_is_one_line(places, tmp_path, capsys, edit, args, message):
    run = tmp_path / "runs" / os.path.basename(places["RUN"])
    shutil.copytree(places["RUN"], run, ignore=shutil.ignore_patterns(".lock", "*.lock"))
    exec(edit, {"R": str(run), "os": os, "json": json, "shutil": shutil})
    args = [_fill(a, {**places, "RUN": str(run)}) for a in args]
    _one_line(capsys, lambda: main(args), message)
    assert not re.search(r"Traceback", capsys.readouterr().err)
