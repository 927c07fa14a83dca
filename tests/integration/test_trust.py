"""Trust, round two: names that would become paths, Python calls of the wrong type, shared run folders with
planted links, a killed convert, file-system failures, and tickets that export to one digest."""
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import export_tiny_ticket, tiny_config
from tflottery import ConfigError, ModelError, TicketError, TflotteryError, convert, export_ticket, find_ticket
from tflottery import load_ticket, transfer
from tflottery.core.keras_compat import keras


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_run):
    where = tmp_path_factory.mktemp("trust")
    ticket, run = export_tiny_ticket(where, tiny_run, 1)
    return where, ticket, run


def _named(name):
    inputs = keras.Input((28, 28, 1))
    return keras.Model(inputs, keras.layers.Dense(10, name="out")(keras.layers.Flatten(name="f")(inputs)), name=name)


def test_a_model_name_that_would_escape_runs_dir_is_refused_before_anything_is_written(in_tmp, sample_data):
    with pytest.raises(ConfigError, match="the model's name='../../../escaped_model' cannot name a file or folder"):
        find_ticket(tiny_config(levels=0), model=_named("../../../escaped_model"), data=sample_data)
    assert not any(in_tmp.rglob("*")) and not (in_tmp.parent.parent / "escaped_model").exists()


@pytest.mark.parametrize("call,error,message", [
    (lambda m: load_ticket(None), TicketError, "A ticket is a directory's path, got None"),
    (lambda m: load_ticket(123), TicketError, "got 123"),
    (lambda m: convert(None), TicketError, "ticket=None must be the path"),
    (lambda m: transfer(123, {}), ConfigError, "source=123 must be the path"),
    (lambda m: export_ticket(m["run"].path, out=123), TicketError, "out=123 must be the path"),
    (lambda m: find_ticket(tiny_config(), data="mnist"), ConfigError, r"data=str must be your arrays \(\(x, y\), or \{'train'"),
    (lambda m: find_ticket(tiny_config(), callbacks=[object()]), ConfigError, "must be a list of tf_keras callbacks"),
    (lambda m: find_ticket("levels=3"), ConfigError, "config must be a RunConfig or a dict"),
    (lambda m: load_ticket(m["ticket"], weights="keep"), TicketError, "weights='keep': use 'trained', 'rewind'"),
    (lambda m: load_ticket(m["ticket"], trust_code="yes"), TflotteryError, "trust_code='yes' must be exactly"),
    (lambda m: __import__("tflottery").IMPSchedule(0.2, 10, 2, kept=["a", "b", "c"]), ConfigError,
     "kept=.* must give the fraction"),
    (lambda m: find_ticket(tiny_config(), model=_named("x").layers[-1]), ModelError, "must be a tf_keras Model"),
])
def test_every_public_function_checks_its_arguments(made, call, error, message):
    where, ticket, run = made
    with pytest.raises(error, match=message):
        call({"ticket": ticket, "run": run})


def test_trust_code_false_keeps_the_allowlist(made, tmp_path):
    import shutil

    from helpers import lambda_model

    _, ticket, _ = made
    bad = shutil.copytree(ticket, tmp_path / "bad")
    lambda_model(bad, tmp_path / "pwned")
    (tmp_path / "pwned").unlink()
    for word in (False, "false"):
        with pytest.raises(TicketError, match="carries code"):
            load_ticket(bad, trust_code=word)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("plant", ["lock symlink", "lock hard link", "replicate symlink", "level symlink"])
def test_links_planted_in_a_shared_runs_folder_touch_nothing_outside(tmp_path, sample_data, plant):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = tiny_config(levels=1)
    config.runs_dir = str(tmp_path / "shared")
    from tflottery.api import plan_ticket

    run_dir = plan_ticket(config, data=sample_data).run_dir
    if plant == "level symlink":
        find_ticket(_levels(config, 0), data=sample_data)
        (run_dir / "replicate_0" / "level_1").symlink_to(elsewhere, target_is_directory=True)
    else:
        run_dir.mkdir(parents=True)
        {"lock symlink": lambda: (run_dir / ".lock").symlink_to(victim),
         "lock hard link": lambda: os.link(victim, run_dir / ".lock"),
         "replicate symlink": lambda: (run_dir / "replicate_0").symlink_to(elsewhere, target_is_directory=True)}[plant]()
    with pytest.raises(TflotteryError, match="symbolic link|hard link|not a plain file"):
        find_ticket(config, data=sample_data)
    assert victim.read_text() == "precious" and list(elsewhere.iterdir()) == []


def _levels(config, levels):
    from tflottery.config import RunConfig

    c = RunConfig.from_dict(config.to_dict())
    c.plan.levels = levels
    return c


def test_a_transfer_whose_predictable_lock_was_planted_is_refused(made, tmp_path):
    from tflottery.tickets import read_ticket

    _, ticket, _ = made
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock_dir = tmp_path / "runs" / f"ticket-{read_ticket(ticket).digest[:16]}"
    lock_dir.mkdir(parents=True)
    (lock_dir / ".lock").symlink_to(victim)
    with pytest.raises(TflotteryError, match="lock"):
        transfer(ticket, {"labels": [0, 1]}, {"steps": "5it"}, runs_dir=tmp_path / "runs")
    assert victim.read_text() == "precious"


def test_the_same_level_exported_twice_has_one_digest_and_says_what_it_vouches_for(made, tmp_path):
    from tflottery.tickets import read_ticket

    _, _, run = made
    one = read_ticket(export_ticket(run, 1, tmp_path / "one"))
    two = read_ticket(export_ticket(run, 1, tmp_path / "two"))
    assert one.digest == two.digest
    assert "not saved_model" in one.meta["digest_covers"] and "not verified on read" in one.meta["saved_model"]


@pytest.mark.slow
def test_killing_converts_parent_leaves_no_worker(made, tmp_path):
    _, ticket, _ = made
    code = (f"import tflottery; tflottery.convert({str(ticket)!r}, modes=['float', 'sparse', 'int8'], "
            f"out={str(tmp_path / 'out')!r})")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    deadline = time.time() + 120
    while time.time() < deadline and worker is None:
        found = subprocess.run(["pgrep", "-P", str(parent.pid), "-f", "tflottery.deploy.worker"], capture_output=True,
                               text=True).stdout.split()
        worker = int(found[0]) if found else None
        time.sleep(0.2)
    assert worker is not None, "the conversion worker never started"
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    for _ in range(100):
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its killed parent")
    assert not (tmp_path / "out" / "convert.json").exists()


@pytest.mark.slow
def test_a_full_disk_is_one_line_naming_the_path(tmp_path):
    """RLIMIT_FSIZE makes every write past 64 KiB fail with EFBIG, as a full disk fails with ENOSPC."""
    code = ("import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536)); "
            "from tflottery.cli import main; main(['find', '--levels=0', '--steps=20it', '--validation=400'])")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("tflottery:")]
    assert len(lines) == 1 and "File too large" in lines[0] and "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("*.tmp"))  # nothing half-written left behind


def test_a_read_only_folder_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from tflottery.core import files

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "runs"))

    monkeypatch.setattr(files, "atomic_write", read_only)
    from tflottery.core.runner import one_line_errors

    with pytest.raises(SystemExit) as exit_:
        with one_line_errors():
            files.atomic_write(tmp_path / "runs" / "x", b"")
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "Read-only file system" in err[0] and str(tmp_path) in err[0]


def test_a_training_that_goes_nan_is_an_error_naming_it_and_nothing_is_stored(in_tmp, sample_data):
    config = tiny_config(levels=1)
    config.training.optimizer, config.training.lr = "sgd", 10.0  # diverges
    with pytest.raises(TflotteryError, match=r"r0 level (\d) ticket trained to a non-finite \w*loss") as error:
        find_ticket(config, data=sample_data)
    level = error.value.args[0].split()[2]
    assert not list(in_tmp.rglob(f"level_{level}/ticket/metrics.json"))  # the unit that diverged: not stored



@pytest.mark.slow
def test_a_reader_racing_exports_sees_the_old_ticket_or_the_new_one(made, tmp_path):
    from tflottery.tickets import read_ticket

    _, _, run = made
    target = tmp_path / "ticket"
    digests = {read_ticket(export_ticket(run, level, tmp_path / f"v{level}")).digest for level in (0, 1)}
    export_ticket(run, 1, target)
    code = (f"import tflottery\nfor i in range(40):\n"
            f"    tflottery.export_ticket({str(run.path)!r}, level=i % 2, out={str(target)!r}, overwrite=True)\n")
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = []
    try:
        while writer.poll() is None:
            seen.append(read_ticket(target).digest)  # never refused as damaged, never a mix
    finally:
        writer.wait(timeout=600)
    assert writer.returncode == 0, writer.stderr.read()[-2000:]
    assert len(seen) > 20 and set(seen) <= digests and len(set(seen)) == 2
