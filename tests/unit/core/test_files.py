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
from tflottery.core.errors import RunError, StorageError
from tflottery.core.files import (DirectoryLock, atomic_directory, atomic_write, clean_leftovers, create_once, host_tag,
                                  pid_namespace, read_bytes, temporary_name)

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


def test_leftovers_of_another_machine_are_kept_unless_the_caller_holds_their_folder(tmp_path):
    assert f"@{NS}.{host_tag()}-" in temporary_name("x.npz")
    ours = tmp_path / f".final.npz.{DEAD_PID}@{NS}.{host_tag()}-abc.tmp"
    other_node = tmp_path / f".final.npz.{DEAD_PID}@{NS}.{'0' * 8 if host_tag() != '0' * 8 else '1' * 8}-abc.tmp"
    for path in (ours, other_node):
        path.write_bytes(b"half")
    assert clean_leftovers(tmp_path) == 1 and [p.name for p in tmp_path.iterdir()] == [other_node.name]
    live = tmp_path / temporary_name("metrics.json")
    live.write_bytes(b"a unit's earlier holder, gone")
    assert clean_leftovers(tmp_path, any_owner=True) == 2 and not list(tmp_path.iterdir())


def test_create_once_lets_exactly_one_writer_win_and_never_replaces(tmp_path):
    assert create_once(tmp_path / "numerics.json", b'{"xla": false}')
    assert not create_once(tmp_path / "numerics.json", b'{"xla": true}')
    assert (tmp_path / "numerics.json").read_bytes() == b'{"xla": false}' and len(list(tmp_path.iterdir())) == 1


def test_shared_holders_exclude_an_exclusive_one_and_a_unit_is_claimed_once(tmp_path):
    run = tmp_path / "run"
    code = ("import sys, time; from tflottery.core.files import DirectoryLock; "
            "a = DirectoryLock(sys.argv[1]).acquire(shared=True); "
            "b = DirectoryLock(sys.argv[1], 'unit', name='r0-level_0-ticket.lock'); assert b.claim(); "
            "print('held', flush=True); time.sleep(60)")
    other = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        mine = DirectoryLock(run).acquire(shared=True)  # a second worker shares the run
        with pytest.raises(RunError, match=r"in use by process \d+ on .*workers of it.*Wait for it to finish"):
            DirectoryLock(run).acquire(wait=0.2)  # a command that needs the run alone does not
        unit = DirectoryLock(run, "unit", name="r0-level_0-ticket.lock")
        assert not unit.claim() and DirectoryLock(run, name="r0-level_0-ticket.lock").holder().startswith(
            f"process {other.pid} on")
        other.kill()  # kill -9: the kernel drops its locks
        other.wait(timeout=30)
        assert unit.claim()
        mine.release(), unit.release()
        assert DirectoryLock(run).acquire().holder() is not None  # alone, now that no one shares it
    finally:
        if other.poll() is None:
            other.kill()


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
def test_a_second_find_waits_for_the_unit_the_first_holds_and_takes_it_when_the_first_is_killed(in_tmp):
    """Two finds of one run share it: the second waits while the first trains level 0; the first, killed -9 at
    an arbitrary moment, frees its unit, and the second trains the whole run, leaving no temporary file. A
    command that needs the run alone is refused while they hold it, naming the holder."""
    flags = ["--validation=400", "--steps=4000it", "--eval_every=2000it", "--levels=2", "--branches=[]"]
    first = subprocess.Popen([sys.executable, "-m", "tflottery.cli", "find", *flags], cwd=in_tmp,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = run = None
    try:
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None and not list(in_tmp.glob("runs/*/.units/*.lock")):
            time.sleep(0.2)
        assert first.poll() is None, first.communicate()[1][-2000:]  # it holds level 0 now
        run = next((in_tmp / "runs").iterdir())
        with pytest.raises(RunError, match=f"is in use by process {first.pid} on"):
            DirectoryLock(run).acquire(wait=0.2)  # what instability, transfer and intake take
        second = subprocess.Popen([sys.executable, "-m", "tflottery.cli", "find", *flags], cwd=in_tmp,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while time.time() < deadline and second.poll() is None and f"process {second.pid} on" not in \
                (run / ".lock").read_text():
            time.sleep(0.2)
        time.sleep(2)
        assert first.poll() is None and second.poll() is None  # the second waits, the first trains undisturbed
        first.kill()  # kill -9 at an arbitrary moment
        first.wait(timeout=60)
        out, err = second.communicate(timeout=600)
        assert second.returncode == 0, err[-2000:]
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
    from tflottery.engine.store import RunStore

    store = RunStore.open(run)
    assert store.replicate(0).levels() == [0, 1, 2] and not list(store.path.rglob("*.tmp"))

