"""Files that are never half-written: atomic writes, whole-directory swaps, locks, leftover clean-up.

Every file tflottery writes goes through here. A file is written to a temporary name beside
its target and renamed into place, so readers see the old file or the whole new one. A
directory (a ticket) is assembled beside its target and swapped in with one atomic
`renameat2(RENAME_EXCHANGE)` where the kernel has it, so the path holds a complete ticket at
every instant. Temporary names carry the writing process's id: `clean_leftovers` removes
those of processes that no longer exist (a kill -9 mid-write), never those of a live one.
Files get the user's umask, like any file a program creates.
"""
from __future__ import annotations

import csv
import ctypes
import errno
import fcntl
import io
import json
import os
import re
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from tflottery.core.errors import RunError

_UMASK = os.umask(0)
os.umask(_UMASK)
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[A-Za-z0-9_]+\.(tmp|old)$")


def _tmp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}-"


def _chmod_default(path: Path, directory: bool = False) -> None:
    os.chmod(path, (0o777 if directory else 0o666) & ~_UMASK)


# --------------------------------------------------------------------------- files
def atomic_write(path: "str | Path", data: bytes) -> Path:
    """Write bytes to `path` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _chmod_default(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path, obj) -> Path:
    return atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n").encode())


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


def npz_bytes(arrays: dict) -> bytes:
    """Arrays as a compressed .npz; keys "<layer>/<variable>" are stored as "<layer>__<variable>"."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k.replace("/", "__"): np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def write_npz(path, arrays: dict) -> Path:
    return atomic_write(path, npz_bytes(arrays))


def read_npz(path) -> dict:
    """Arrays from an .npz file written by tflottery, never unpickling anything."""
    with np.load(path, allow_pickle=False) as f:
        return {k.replace("__", "/"): f[k] for k in f.files}


def write_csv(path, rows: list[dict]) -> Path:
    buffer = io.StringIO()
    fields = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write(path, buffer.getvalue().encode())


def _jsonable(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --------------------------------------------------------------------------- directories
def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0:  # AT_FDCWD, RENAME_EXCHANGE
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(a))


@contextmanager
def atomic_directory(target: "str | Path", may_replace: Optional[Callable[[Path], None]] = None):
    """Yield a temporary directory that replaces `target` whole when the block succeeds.

    An existing `target` is replaced only after `may_replace(target)` returns (it raises to
    refuse). The swap is one atomic exchange where the kernel supports it; elsewhere it is two
    renames, and a kill between them is repaired by `recover_directory` on the next export.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target.parent, target.name)
    recover_directory(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=_tmp_prefix(target.name), suffix=".tmp"))
    _chmod_default(tmp, directory=True)
    try:
        yield tmp
        if target.exists() or target.is_symlink():
            if may_replace is not None:
                may_replace(target)
            if not _exchange(tmp, target):
                old = tmp.with_name(tmp.name[:-len(".tmp")] + ".old")
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # after an exchange: the old directory


def recover_directory(target: Path) -> None:
    """Put back a directory that a killed two-rename swap left aside as `.<name>.<pid>-*.old`."""
    if target.exists():
        return
    for old in sorted(target.parent.glob(f".{glob_escape(target.name)}.*.old")):
        match = _TMP.match(old.name)
        if match and match["name"] == target.name and not _alive(int(match["pid"])):
            os.replace(old, target)
            return


def glob_escape(name: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", name)


def clean_leftovers(folder: "str | Path", name: Optional[str] = None) -> int:
    """Remove temporary files and folders left in `folder` by processes that no longer exist.

    With `name`, only the leftovers of that target. Returns how many were removed.
    """
    folder, removed = Path(folder), 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        match = _TMP.match(entry.name)
        if not match or not entry.name.endswith(".tmp") or (name and match["name"] != name):
            continue
        if _alive(int(match["pid"])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- locks
class DirectoryLock:
    """An exclusive lock on a directory (flock on `<dir>/.lock`), released when the process ends.

    A second process asking for it gets a `RunError` naming the holder, at once: two writers
    never interleave in one run. The kernel drops the lock when its holder dies, even by kill -9.
    """

    def __init__(self, folder: "str | Path", what: str = "run"):
        self.path, self.what, self.fd = Path(folder) / ".lock", what, None

    def acquire(self) -> "DirectoryLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunError(f"{self.path.parent} is in use by {holder}: two processes must not write one "
                           f"{self.what}. Wait for it to finish, or stop it; the {self.what} resumes where it "
                           "stopped.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
