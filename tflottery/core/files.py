"""Files that are never half-written and never written through a link: atomic writes, directory swaps, locks, clean-up.

Every file tflottery writes goes through here. A file is written to a temporary name beside
its target and renamed into place, so readers see the old file or the whole new one. Inside a
folder that others may share (a run, a ticket), every directory between a trusted `anchor`
(the folder the user named) and the file is opened with O_NOFOLLOW, one component at a time,
and the file is created and renamed relative to that directory handle: a symbolic link planted
anywhere below the anchor is refused, never followed, even if it appears between a check and
the write. A directory (a ticket) is assembled beside its target and swapped in with one atomic
`renameat2(RENAME_EXCHANGE)`; where the file system cannot exchange, an existing target is
refused rather than removed, so the path is never empty.

Temporary names carry the writing process's id, PID namespace and host: `clean_leftovers`
removes those of processes of this namespace and host that no longer exist (a kill -9
mid-write), never those of a live one, nor any written from another namespace or machine (a
container or a node sharing the folder); `clean_unit_leftovers` removes every one in a folder
whose owner's lock this process holds (`any_owner`: a unit's folder, so its writer is gone
wherever it ran). Files get
the user's umask, like any file a program creates.
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
import secrets
import shutil
import socket
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from tflottery.core.errors import DamagedError, RunError, StorageError
from tflottery.core.names import storage_key, weight_key

_UMASK = os.umask(0)
os.umask(_UMASK)
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)@(?P<ns>\d+)(?:\.(?P<host>[0-9a-f]{8}))?-[A-Za-z0-9_]+\.(tmp|old)$")
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def pid_namespace() -> int:
    """The inode of this process's PID namespace (0 where the system does not say)."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def host_tag() -> str:
    """This machine in 8 hex digits: its name and boot (two nodes of one cluster share a PID namespace's inode)."""
    import hashlib

    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return hashlib.sha256(f"{socket.gethostname()}/{boot}".encode()).hexdigest()[:8]


_NS = pid_namespace()
_HOST = host_tag()


def temporary_name(name: str) -> str:
    return f".{name}.{os.getpid()}@{_NS}.{_HOST}-{secrets.token_hex(6)}.tmp"


# --------------------------------------------------------------------------- folders opened safely
@contextmanager
def folder(path: "str | Path", anchor: "str | Path | None" = None, create: bool = False) -> Iterator[int]:
    """A file descriptor of directory `path`, every component below `anchor` opened without following links
    (and created where missing with `create`). `anchor` defaults to `path` itself: the user's own folder."""
    path = Path(path)
    anchor = Path(anchor) if anchor is not None else path
    parts = path.relative_to(anchor).parts if path != anchor else ()
    if create:
        anchor.mkdir(parents=True, exist_ok=True)
    fd = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    where = anchor
    try:
        for part in parts:
            where = where / part
            if create:
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                next_fd = os.open(part, _DIR, dir_fd=fd)
            except OSError as error:
                raise _link_error(where, error) from None
            os.close(fd)
            fd = next_fd
        yield fd
    finally:
        os.close(fd)


def _link_error(where: Path, error: OSError) -> Exception:
    if error.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(where):
        return StorageError(f"{where} is a symbolic link where tflottery keeps a folder of its own: refused, never "
                            "followed. Remove the link (someone with write access to the folder planted it).")
    return error


# --------------------------------------------------------------------------- files
def atomic_write(path: "str | Path", data: bytes, anchor: "str | Path | None" = None) -> Path:
    """Write bytes to `path` so that readers see the old file or the whole new one, never a part, and never
    through a link below `anchor` (default: the file's own folder)."""
    _write(Path(path), data, anchor, replace=True)
    return Path(path)


def create_once(path: "str | Path", data: bytes, anchor: "str | Path | None" = None) -> bool:
    """Write `path` whole only if no file is there (two workers racing: exactly one wins); whether this call did."""
    return _write(Path(path), data, anchor, replace=False)


def _write(path: Path, data: bytes, anchor, replace: bool) -> bool:
    try:
        with folder(path.parent, anchor if anchor is not None else path.parent, create=True) as fd:
            tmp = temporary_name(path.name)
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=fd)
            try:
                with os.fdopen(out, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                if replace:
                    os.replace(tmp, path.name, src_dir_fd=fd, dst_dir_fd=fd)
                    return True
                try:
                    os.link(tmp, path.name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
                    return True
                except FileExistsError:
                    return False
                finally:
                    os.unlink(tmp, dir_fd=fd)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=fd)
                except FileNotFoundError:
                    pass
                raise
    except StorageError:
        raise
    except OSError as error:  # a full disk, a read-only mount, a file-size limit: say which file
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror, str(path)) from None


def read_bytes(path: "str | Path", anchor: "str | Path | None" = None, limit: int = 1 << 31) -> bytes:
    """The bytes of a regular file, opened without following a link at it or below `anchor`."""
    path = Path(path)
    with folder(path.parent, anchor if anchor is not None else path.parent) as fd:
        try:
            handle = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        except OSError as error:
            raise _link_error(path, error) from None
    with os.fdopen(handle, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise StorageError(f"{path} is not a regular file: refused.")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise StorageError(f"{path} is larger than {limit >> 20} MiB: not a file tflottery wrote.")
    return data


def json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n").encode()


def write_json(path, obj, anchor=None) -> Path:
    return atomic_write(path, json_bytes(obj), anchor)


def read_json(path, anchor=None) -> dict:
    """A JSON file's contents; one that is cut short or altered is a DamagedError naming it."""
    data = read_bytes(path, anchor)
    try:
        return json.loads(data)
    except ValueError as error:
        raise DamagedError(f"{path} is not valid JSON ({type(error).__name__} at byte "
                           f"{getattr(error, 'pos', '?')} of {len(data)}): the file was cut short or altered.") from None


def npz_bytes(arrays: dict, compress: bool = True) -> bytes:
    """Arrays as a compressed .npz (np.load reads it); keys "<layer>/<variable>" are stored as
    "<layer>__<variable>". Deflate level 1: float weights hardly compress at any level (7%), masks and
    sparse weights almost as well as at numpy's level 6, four times faster; entries carry a fixed
    date, so the same arrays are the same bytes. `compress=False`: stored as they are."""
    import zipfile

    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method, compresslevel=1 if compress else None) as archive:
        for key, value in arrays.items():
            entry = zipfile.ZipInfo(storage_key(key) + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = method
            setattr(entry, "compress_level" if hasattr(entry, "compress_level") else "_compresslevel", 1)  # 3.13's name
            with archive.open(entry, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asarray(value), allow_pickle=False)
    return buffer.getvalue()


def write_npz(path, arrays: dict, anchor=None) -> Path:
    return atomic_write(path, npz_bytes(arrays), anchor)


def write_npzs(files: dict, anchor=None) -> dict:
    """{path: arrays} written as `write_npz` does, in that order, compressed side by side (zlib lets go of
    the GIL: a unit's masks, start and final weights take a core each); {path: the bytes written}."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, min(len(files), os.cpu_count() or 1))) as pool:
        contents = list(pool.map(npz_bytes, files.values()))
    for path, data in zip(files, contents):
        atomic_write(path, data, anchor)
    return dict(zip(files, contents))


def read_npz(path, anchor=None) -> dict:
    """Arrays from an .npz file written by tflottery, never unpickling anything."""
    with np.load(io.BytesIO(read_bytes(path, anchor)), allow_pickle=False) as f:
        return {weight_key(k): f[k] for k in f.files}


def csv_bytes(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    fields = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def write_csv(path, rows: list[dict], anchor=None) -> Path:
    return atomic_write(path, csv_bytes(rows), anchor)


def remove_file(path: "str | Path", anchor: "str | Path | None" = None) -> bool:
    """Remove a regular file (never through a link below `anchor`); whether it was there."""
    path = Path(path)
    with folder(path.parent, anchor if anchor is not None else path.parent) as fd:
        try:
            os.unlink(path.name, dir_fd=fd)
            return True
        except FileNotFoundError:
            return False


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


def subfolders(path: "str | Path", prefix: str, anchor: "str | Path | None" = None) -> list[str]:
    """Names of the entries of `path` starting with `prefix`; an entry that is a link is refused."""
    path = Path(path)
    if not path.exists():
        return []
    with folder(path, anchor if anchor is not None else path) as fd:
        names = []
        for entry in os.scandir(fd):
            if entry.name.startswith(prefix):
                if entry.is_symlink():
                    raise StorageError(f"{path / entry.name} is a symbolic link where tflottery keeps a folder of "
                                       "its own: refused, never followed. Remove the link.")
                names.append(entry.name)
        return sorted(names)


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


EXCHANGE = _exchange  # the swap, replaceable in tests of a file system without it


@contextmanager
def atomic_directory(target: "str | Path", may_replace: Optional[Callable[[Path], None]] = None):
    """Yield a temporary directory that replaces `target` whole when the block succeeds.

    An existing `target` is replaced only after `may_replace(target)` returns (it raises to
    refuse), and only by one atomic exchange: where the file system has none, replacing is refused
    (two renames would leave the path empty between them), and a new target is one rename.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target.parent, target.name)
    tmp = target.parent / temporary_name(target.name)
    os.mkdir(tmp, 0o777)
    try:
        yield tmp
        if target.exists() or target.is_symlink():
            if may_replace is not None:
                may_replace(target)
            if not EXCHANGE(tmp, target):
                raise StorageError(f"{target.parent} is on a file system that cannot swap a folder atomically "
                                   "(no renameat2 RENAME_EXCHANGE, e.g. NFS): replacing the ticket there would leave "
                                   "the path empty for a moment. Export to a new path, or remove the old ticket first.")
        else:
            os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # after an exchange: the old directory


def clean_leftovers(folder_path: "str | Path", name: Optional[str] = None, *, any_owner: bool = False) -> int:
    """Remove temporary files and folders left in `folder_path` by dead processes of this PID namespace and host.

    With `name`, only the leftovers of that target; with `any_owner`, every writer's (only for a folder
    whose lock the caller holds: no one else can be writing it). Returns how many were removed.
    """
    folder_path, removed = Path(folder_path), 0
    if not folder_path.is_dir() or folder_path.is_symlink():
        return 0
    for entry in os.scandir(folder_path):
        match = _TMP.match(entry.name)
        if not match or not entry.name.endswith(".tmp") or (name and match["name"] != name):
            continue
        if not any_owner and (int(match["ns"]) != _NS or match["host"] not in (None, _HOST)
                              or _alive(int(match["pid"]))):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)
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
LINE = 128  # bytes of a lock file's holder line


class DirectoryLock:
    """A lock on a directory (flock on `<dir>/.lock`, or `<dir>/<name>`), released when the process ends.

    A second process asking for it gets a `RunError` naming the holder, at once: two writers
    never interleave; `shared` holders (workers of one run) exclude only exclusive ones, and
    `claim` takes a lock if it is free and says whether it did (a unit's, `RunStore.claim`). The kernel drops the lock when its holder dies, even by kill -9. The lock
    file is opened without following a link and must be a plain file of one link: a planted
    link to another file is refused, so nothing outside the folder is ever truncated.

    A lease on top (a unit's, `tflottery.engine.leases`): the holder's line carries a beat count it
    renews (`renew`); a process that saw the same line for longer than the lease takes the lock over
    (`take_over`: a fresh file renamed over the old one, which the stuck holder keeps locked), and the
    stuck holder, should it wake, finds the file at the path is no longer its own (`owns`).
    """

    def __init__(self, folder_path: "str | Path", what: str = "run", anchor: "str | Path | None" = None,
                 name: str = ".lock"):
        self.folder, self.what, self.name = Path(folder_path), what, name
        self.anchor = Path(anchor) if anchor is not None else self.folder.parent
        self.path, self.fd, self.beats, self.since = self.folder / name, None, 0, ""

    def acquire(self, wait: float = 1.0, shared: bool = False) -> "DirectoryLock":
        """Take the lock, retrying for `wait` seconds (a reader's probe holds it for an instant)."""
        if self._take(wait, shared):
            return self
        holder = self.holder() or "another process"
        raise RunError(f"{self.folder} is in use by {holder}: two processes must not write one "
                       f"{self.what}. Wait for it to finish, or stop it; the {self.what} resumes where it "
                       "stopped.") from None

    def claim(self) -> bool:
        """Take the lock (exclusive) if it is free now; False if another process holds it."""
        return self._take(0.0, False)

    def _take(self, wait: float, shared: bool) -> bool:
        with folder(self.folder, self.anchor, create=True) as dir_fd:
            try:
                fd = os.open(self.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=dir_fd)
            except OSError as error:
                if error.errno == errno.ELOOP:
                    raise StorageError(f"{self.path} is a symbolic link: a lock file is tflottery's own; refused, "
                                       "nothing was written. Remove the link.") from None
                raise
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(fd)
            raise StorageError(f"{self.path} is not a plain file of its own (a hard link or a device): refused, "
                               "nothing was written. Remove it.")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                os.close(fd)
                return False
        self.fd, self.beats, self.since = fd, 0, time.strftime('%H:%M:%S')
        if shared:
            os.pwrite(fd, f"{self.line()} (with any other workers of it)".ljust(LINE).encode(), 0)
        else:
            os.ftruncate(fd, 0)
            os.pwrite(fd, self.line().ljust(LINE).encode(), 0)
        return True

    def line(self) -> str:
        """This holder's line in the lock file: who, since when, and (renewed) how many beats of its lease."""
        return (f"process {os.getpid()} on {socket.gethostname()} since {self.since}"
                + (f", lease beat {self.beats}" if self.beats else ""))

    def renew(self) -> None:
        """One beat of the holder's lease: its line rewritten with the next count, flushed to the file's server
        (another machine reading it sees the change)."""
        fd = self.fd
        if fd is None:
            return
        self.beats += 1
        try:
            os.pwrite(fd, self.line().ljust(LINE).encode(), 0)
            os.fsync(fd)
        except OSError:
            pass  # released meanwhile, or a file system that cannot sync: the next beat tries again

    def owns(self) -> bool:
        """Whether the lock file at the path is still the one this holder locked (False once another process took
        the lease over, or the file was removed)."""
        if self.fd is None:
            return False
        try:
            with folder(self.folder, self.anchor) as dir_fd:
                found = os.stat(self.name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            return False
        mine = os.fstat(self.fd)
        return (found.st_dev, found.st_ino) == (mine.st_dev, mine.st_ino)

    def take_over(self, stale: str) -> bool:
        """Take the lock from a holder whose line has stayed `stale` (its lease ran out): under a guard lock, so
        that two takers never both win, and only while the line is still `stale`; a fresh lock file locked by
        this process is renamed over the old one. Whether this process holds the lock now (a free lock is
        simply claimed)."""
        guard = DirectoryLock(self.folder, self.what, self.anchor, f"{self.name}.takeover")
        if not guard.claim():
            return False
        try:
            line = self.holder()
            if line is None:
                return self.claim()
            if line != stale:
                return False
            return self._replace()
        finally:
            guard.release()

    def _replace(self) -> bool:
        temporary = temporary_name(self.name)
        with folder(self.folder, self.anchor) as dir_fd:
            fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
                         dir_fd=dir_fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.fd, self.beats, self.since = fd, 0, time.strftime('%H:%M:%S')
            os.pwrite(fd, self.line().ljust(LINE).encode(), 0)
            os.fsync(fd)
            os.rename(temporary, self.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return True

    def holder(self) -> "str | None":
        """Who holds the lock now (its line), or None; reads only: never creates or changes the lock file."""
        try:
            with folder(self.folder, self.anchor) as dir_fd:
                fd = os.open(self.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held in either mode by anyone
            except BlockingIOError:
                return os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


VIRTUAL = ("/proc", "/sys", "/dev")


def check_folder(path: "str | Path", what: str) -> Path:
    """`path` as a folder tflottery may write: it exists as a directory or can be made, is writable, lies on
    no virtual file system, has names the file system allows, and is inside no ticket. One clear error
    (a ConfigError naming `what`) before any work, never a traceback half-way."""
    from tflottery.core.errors import ConfigError

    if not isinstance(path, (str, Path)) or not str(path):
        raise ConfigError(f"{what} is empty or not a path: name a folder, e.g. {what}=runs.")
    path = Path(path).expanduser()
    text = str(path.absolute())
    if any(text == v or text.startswith(v + "/") for v in VIRTUAL):
        raise ConfigError(f"{what}={str(path)!r} lies on a virtual file system ({text.split('/')[1]}): name a folder "
                          "on a disk.")
    try:
        name_max, path_max = os.pathconf("/", "PC_NAME_MAX"), os.pathconf("/", "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    if len(os.fsencode(text)) > path_max - 512 or any(len(os.fsencode(p)) > name_max for p in path.parts):
        raise ConfigError(f"{what}={text[:60]!r}... is longer than this file system allows for a folder that will hold "
                          "run files: choose a shorter path.")
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            raise ConfigError(f"{what}={str(path)!r}: {existing} is a dangling symbolic link: remove it or name "
                              "another folder.")
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{what}={str(path)!r}: {existing} is a file, not a folder: name a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}={str(path)!r}: {existing} is not writable by this user: name a folder you can "
                          "write.")
    for folder in [existing.resolve(), *existing.resolve().parents]:
        if (folder / "ticket.json").is_file():
            raise ConfigError(f"{what}={str(path)!r} lies inside the ticket {folder}, whose files are checksummed: "
                              "name a folder outside it.")
    return path


def check_locks(folder_path: "str | Path", hold: float = 0.0) -> list[str]:
    """Check that the file system of `folder_path` gives what processes sharing a run need: atomic renames,
    create-once links, and locks that exclude another process and that the kernel drops when it is killed
    (-9). `hold`: keep a lock on `<folder>/.tflottery-check.lock` that long, so that the same check started on
    another machine meanwhile reports it held (exclusion across machines). The lines of the report; a
    StorageError naming what failed and the fix."""
    import subprocess
    import sys

    base = check_folder(folder_path, "check_locks")
    lines = []
    across = DirectoryLock(base, "check", base, ".tflottery-check.lock")
    if across.claim():
        lines.append(f"no other machine is running this check on {base} now" +
                     (f"; holding its lock {hold:g} s for one that starts meanwhile" if hold else ""))
    else:
        lines.append(f"ok: the lock is held by {across.holder()}: exclusion reaches this machine from there")
        across = None
    scratch = base / f".tflottery-check-{socket.gethostname()}-{os.getpid()}"
    try:
        atomic_write(scratch / "file", b"1", base)
        atomic_write(scratch / "file", b"2", base)
        wins = [create_once(scratch / "once", b"a", base), create_once(scratch / "once", b"b", base)]
        if read_bytes(scratch / "file", base) != b"2" or wins != [True, False]:
            raise StorageError(f"{base}: renames or links are not atomic here; a run cannot be shared on it.")
        lines.append("ok: atomic rename and create-once link")
        code = ("import sys, time; from tflottery.core.files import DirectoryLock; "
                "assert DirectoryLock(sys.argv[1], 'check', sys.argv[2], 'unit.lock').claim(); "
                "print('held', flush=True); time.sleep(120)")
        child = subprocess.Popen([sys.executable, "-c", code, str(scratch), str(base)], stdout=subprocess.PIPE,
                                 text=True)
        try:
            if child.stdout.readline().strip() != "held":
                raise StorageError(f"{base}: a process could not take a lock here (flock): mount it with locks on.")
            unit = DirectoryLock(scratch, "check", base, "unit.lock")
            if unit.claim():
                raise StorageError(f"{base}: two processes held one lock at once: flock does not exclude here. "
                                   "NFS: mount without local_lock=flock/all (NFSv4 locks are then real); Lustre: "
                                   "mount with -o flock. Workers must not share a run on it.")
            lines.append("ok: a lock another process holds is refused")
            child.kill()
            child.wait(timeout=30)
            deadline = time.monotonic() + 30
            while not unit.claim():
                if time.monotonic() > deadline:
                    raise StorageError(f"{base}: a killed process's lock was not released in 30 s: a worker "
                                       "killed there would hold its unit for ever.")
                time.sleep(0.2)
            unit.release()
            lines.append("ok: the lock of a process killed by kill -9 is released")
        finally:
            if child.poll() is None:
                child.kill()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if across is not None:
        time.sleep(hold)
        across.release()
    return lines
