"""Files are never half-written, never lost, left-overs of killed writers are cleared, modes follow the umask."""
import json
import os
import stat
import subprocess
import sys
import time

import pytest

from helpers import tiny_config
from tflottery import find_ticket
from tflottery.core.errors import StorageError
from tflottery.core.files import (DirectoryLock, atomic_directory, atomic_write, clean_leftovers, pid_namespace,
                                  read_bytes)

DEAD_PID = 2 ** 22 + 12345  # above Linux's default pid_max: never a live process
NS = pid_namespace()


def test_leftovers_of_dead_writers_are_removed_and_a_live_writers_are_kept(tmp_path):
    (tmp_path / f".final.npz.{DEAD_PID}@{NS}-abc123.tmp").write_bytes(b"half")
    (tmp_path / f".ticket.{DEAD_PID}@{NS}-xyz.tmp").mkdir()
    live = tmp_path / f".metrics.json.{os.getpid()}@{NS}-def456.tmp"
    live.write_bytes(b"being written")
    other_namespace = tmp_path / f".final.npz.{DEAD_PID}@{NS + 1}-abc.tmp"  # a container sharing the folder
    other_namespace.write_bytes(b"a live writer elsewhere: its pid means nothing here")
    (tmp_path / ".hidden_but_not_ours").write_text("keep")
    assert clean_leftovers(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other_namespace.name,
                                                                 ".hidden_but_not_ours"])


def test_the_next_run_clears_what_a_killed_one_left(in_tmp, sample_data):
    run = find_ticket(tiny_config(levels=1), data=sample_data)
    level = run.path / "replicate_0" / "level_1" / "ticket"
    (level / f".final.npz.{DEAD_PID}@{NS}-abc.tmp").write_bytes(b"half-written by a killed process")
    config = tiny_config(levels=2)
    find_ticket(config, data=sample_data)
    assert not list(run.path.rglob("*.tmp"))


def test_files_follow_the_umask(in_tmp, sample_data):
    previous = os.umask(0o002)
    try:
        path = atomic_write(in_tmp / "a" / "file.json", b"{}")
        with atomic_directory(in_tmp / "folder") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(previous)
    # the umask in force when the file was made: files 0666 & ~umask, directories 0777 & ~umask
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
    assert stat.S_IMODE((in_tmp / "folder").stat().st_mode) == 0o775
    umask = os.umask(0)
    os.umask(umask)
    run = find_ticket(tiny_config(levels=0), data=sample_data)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in run.path.rglob("*.npz")}
    assert modes == {0o666 & ~umask}  # not mkstemp's 0600


def test_a_failed_export_leaves_the_old_ticket_whole_and_no_temporaries(tmp_path):
    target = tmp_path / "ticket"
    with atomic_directory(target) as tmp:
        (tmp / "ticket.json").write_text('{"format_version": 2}')
    with pytest.raises(RuntimeError):
        with atomic_directory(target, may_replace=lambda t: None) as tmp:
            (tmp / "ticket.json").write_text("new, half made")
            raise RuntimeError("killed while assembling")
    assert (target / "ticket.json").read_text() == '{"format_version": 2}'
    assert [p.name for p in tmp_path.iterdir()] == ["ticket"]
    with atomic_directory(target, may_replace=lambda t: None) as tmp:  # the swap: one atomic exchange
        (tmp / "ticket.json").write_text('{"format_version": 2, "new": true}')
    assert json.loads((target / "ticket.json").read_text())["new"] is True
    assert [p.name for p in tmp_path.iterdir()] == ["ticket"]


def test_without_an_atomic_exchange_a_ticket_is_never_replaced_so_the_path_is_never_empty(tmp_path, monkeypatch):
    from tflottery.core import files

    target = tmp_path / "ticket"
    with atomic_directory(target) as tmp:
        (tmp / "ticket.json").write_text("old")
    monkeypatch.setattr(files, "EXCHANGE", lambda a, b: False)  # NFS: no renameat2 RENAME_EXCHANGE
    with pytest.raises(StorageError, match="cannot swap a folder atomically"):
        with atomic_directory(target, may_replace=lambda t: None) as tmp:
            (tmp / "ticket.json").write_text("new")
    assert (target / "ticket.json").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["ticket"]


def test_nothing_is_written_or_read_through_a_planted_link(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    shared = tmp_path / "shared"
    (shared / "run").mkdir(parents=True)
    (shared / "run" / "replicate_0").symlink_to(victim, target_is_directory=True)
    with pytest.raises(StorageError, match="replicate_0 is a symbolic link"):
        atomic_write(shared / "run" / "replicate_0" / "level_0" / "metrics.json", b"{}", anchor=shared)
    (shared / "run" / "spec.json").symlink_to(victim / "precious.txt")
    with pytest.raises(StorageError, match="spec.json is a symbolic link"):
        read_bytes(shared / "run" / "spec.json", anchor=shared)
    atomic_write(shared / "run" / "spec.json", b"{}", anchor=shared)  # replaces the link itself, never its target
    assert (victim / "precious.txt").read_text() == "keep me" and sorted(p.name for p in victim.iterdir()) == [
        "precious.txt"]


@pytest.mark.parametrize("plant", ["symlink", "hardlink"])
def test_a_lock_file_that_is_a_link_is_refused_and_its_target_untouched(tmp_path, plant):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "shared" / "run"
    run.mkdir(parents=True)
    (run / ".lock").symlink_to(victim) if plant == "symlink" else os.link(victim, run / ".lock")
    with pytest.raises(StorageError, match="lock"):
        DirectoryLock(run).acquire()
    assert victim.read_text() == "precious"


@pytest.mark.slow
def test_two_processes_on_one_run_then_a_kill_9_and_a_resume(in_tmp):
    """The second writer is refused at once, naming the first; the first, killed -9, resumes in a third."""
    flags = ["--validation=400", "--steps=3000it", "--eval_every=1500it", "--levels=2", "--branches=[]"]
    first = subprocess.Popen([sys.executable, "-m", "tflottery.cli", "find", *flags], cwd=in_tmp,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None and \
                not any(p.read_text().strip() for p in in_tmp.glob("runs/*/.lock")):
            time.sleep(0.2)
        assert first.poll() is None, first.communicate()[1][-2000:]  # it holds the run now
        second = subprocess.run([sys.executable, "-m", "tflottery.cli", "find", *flags], cwd=in_tmp,
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"is in use by process {first.pid}" in second.stderr and "Traceback" not in second.stderr
        assert first.poll() is None  # still training, undisturbed
        first.kill()  # kill -9 at an arbitrary moment
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    third = subprocess.run([sys.executable, "-m", "tflottery.cli", "find", *flags], cwd=in_tmp,
                           capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr[-2000:]
    from tflottery.engine.store import RunStore

    store = RunStore.open(next((in_tmp / "runs").iterdir()))
    assert store.replicate(0).levels() == [0, 1, 2] and not list(store.path.rglob("*.tmp"))
