"""Reading a ticket as untrusted input: every check before any use, every failure a `TicketError`.

Tickets are shared files. The ticket directory is opened once, and every file is read relative
to that handle, so a reader racing an export sees the old ticket or the new one, never a mix.
Reading never follows a link (symbolic or hard) at any depth, never opens anything but the
regular files listed in ticket.json, never lets a value of the ticket become a path, never
unpickles, never decompresses an array before its declared size and type passed the limits,
and never runs code from the file: the architecture is rebuilt from built-in Keras layers only
(a `Lambda` or custom layer is refused unless `trust_code=True`), within a budget of weights
and of values per layer output, and must compute finite outputs. ticket.json is parsed
strictly: no duplicate keys, no NaN or Infinity, no integer past 2**53, no control character.
Masks must be boolean bytes of 0 or 1, cover exactly the pruned kernels with their shapes, and
match the recorded sparsity; weights must be little-endian float32, finite, zero where pruned.
Nothing read from a ticket is printed without escaping (`tflottery.core.names.printable`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery.core.errors import ConfigError, TicketError
from tflottery.core.names import printable, safe_component, weight_key
from tflottery.tickets import format as fmt

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Ticket:
    """A verified ticket: what ticket.json says, and the arrays and architecture it holds."""

    path: Path
    meta: dict
    masks: dict
    rewind: dict
    weights: dict
    architecture: Optional[str]  # Keras JSON; None for a weights-only ticket
    trust_code: bool = False

    @property
    def digest(self) -> str:
        return self.meta["digest"]

    @property
    def weights_only(self) -> bool:
        """Whether the ticket holds weights and masks only (its network is built by code it cannot carry)."""
        return self.architecture is None

    def build(self, weights: str = "trained"):
        """The plain tf_keras model at its trained or rewind weights (masked)."""
        from tflottery.models.weights import set_weights

        if self.weights_only:
            raise TicketError(f"{self.path} is a weights-only ticket ({self.meta['weights_only']['why']}): it rebuilds "
                              "no network; load_ticket(path, model=<your model, or the code that builds it>) fills "
                              "yours.")
        model = build_architecture(self.architecture, self.path / "model.json", self.trust_code)
        set_weights(model, self.weights if weights == "trained" else self.rewind)
        return model


class _Vanished(Exception):
    """A file of the opened ticket disappeared while it was read: an export swapped the ticket and removed the
    old one under this reader. Reading again from the path gives the new ticket, whole."""


class _Root:
    """A ticket directory opened once; every file of it read relative to this handle."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.fd = os.open(path, _DIR)
        except OSError:
            raise TicketError(f"{path} is not a ticket: a ticket is a directory (made by `tflottery export`) "
                              "holding ticket.json, not a link or a file.") from None

    def close(self) -> None:
        os.close(self.fd)

    def open(self, name: str) -> int:
        """A file descriptor for the regular file `name` (a/b/c) inside, no link followed at any depth."""
        fd, parts = os.dup(self.fd), name.split("/")
        try:
            for part in parts[:-1]:
                next_fd = os.open(part, _DIR, dir_fd=fd)
                os.close(fd)
                fd = next_fd
            file_fd = os.open(parts[-1], _FILE, dir_fd=fd)
        except FileNotFoundError:
            if self._replaced():
                raise _Vanished() from None
            raise TicketError(f"{self.path / name} cannot be opened as a regular file of the ticket (it is "
                              "missing).") from None
        except OSError as error:
            raise TicketError(f"{self.path / name} cannot be opened as a regular file of the ticket "
                              f"({error.strerror}).") from None
        finally:
            os.close(fd)
        info = os.fstat(file_fd)
        if info.st_nlink == 0 and self._replaced():  # an export swapped the ticket and removed the old one's files
            os.close(file_fd)
            raise _Vanished()
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size > fmt.MAX_FILE_BYTES:
            os.close(file_fd)
            raise TicketError(f"{self.path / name} is not a regular file of its own of at most "
                              f"{fmt.MAX_FILE_BYTES >> 20} MiB (a link, a device, a pipe, or too large): refused.")
        return file_fd

    def _replaced(self) -> bool:
        """Whether the path now names another directory than the one this reader opened."""
        try:
            now = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return True
        mine = os.fstat(self.fd)
        return mine.st_nlink == 0 or (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino)

    def read(self, name: str, limit: int) -> bytes:
        with os.fdopen(self.open(name), "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise TicketError(f"{self.path / name} is larger than {limit >> 20} MiB: not a ticket file.")
        return data

    def sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        with os.fdopen(self.open(name), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def entries(self) -> dict:
        """{relative path: "file" | "dir"} of everything inside, walked iteratively within the depth and count
        limits; a link of any kind, a device, a pipe or a socket anywhere is refused."""
        found, total, stack = {}, 0, [(os.dup(self.fd), "", 0)]
        while stack:
            fd, prefix, depth = stack.pop()
            try:
                with os.scandir(fd) as listing:
                    for entry in listing:
                        total += self._present_entry(fd, entry, prefix, depth, found, stack)
                        if len(found) > fmt.MAX_FILES + 100 or total > fmt.MAX_TOTAL_BYTES:
                            raise TicketError(f"{self.path} holds more than {fmt.MAX_FILES} files or "
                                              f"{fmt.MAX_TOTAL_BYTES >> 30} GiB: not a ticket.")
            except BaseException:
                for other, _, _ in stack:
                    os.close(other)
                raise
            finally:
                os.close(fd)
        return found

    def _present_entry(self, fd: int, entry, prefix: str, depth: int, found: dict, stack: list) -> int:
        """`_entry`, where an entry listed but gone when looked at means an export swapped the ticket and removed
        the old one under this reader (read again), or that a file of it was deleted meanwhile."""
        try:
            return self._entry(fd, entry, prefix, depth, found, stack)
        except FileNotFoundError:
            if self._replaced():
                raise _Vanished() from None
            raise TicketError(f"{self.path / printable(prefix + entry.name)} disappeared while the ticket was "
                              "read: something is deleting its files. Re-export the ticket.") from None

    def _entry(self, fd: int, entry, prefix: str, depth: int, found: dict, stack: list) -> int:
        rel, info = prefix + entry.name, entry.stat(follow_symlinks=False)
        shown = printable(rel)
        if stat.S_ISLNK(info.st_mode):
            raise TicketError(f"{self.path} holds a symbolic link ({shown}): tickets hold only regular files; refused.")
        if stat.S_ISDIR(info.st_mode):
            if depth + 1 > fmt.MAX_DEPTH:
                raise TicketError(f"{self.path} nests folders more than {fmt.MAX_DEPTH} deep ({shown}...): not a ticket.")
            found[rel] = "dir"
            stack.append((os.open(entry.name, _DIR, dir_fd=fd), rel + "/", depth + 1))
            return 0
        if not stat.S_ISREG(info.st_mode):
            raise TicketError(f"{self.path} holds {shown}, not a regular file (a device, socket or pipe): refused.")
        if info.st_nlink != 1:
            raise TicketError(f"{self.path} holds {shown}, a hard link to another file: refused.")
        found[rel] = "file"
        return info.st_size


def read_ticket(path: "str | Path", trust_code: bool = False) -> Ticket:
    """Verify everything in a ticket directory and return its contents: the old ticket or the new one when an
    export replaces it meanwhile, never a mix of the two."""
    if not isinstance(path, (str, Path)) or not str(path):
        raise TicketError(f"A ticket is a directory's path, got {path!r}.")
    for _ in range(5):
        try:
            return _read_once(Path(path), trust_code)
        except _Vanished:
            continue
    raise TicketError(f"{path} was replaced five times while it was read: wait for the exports to finish.")


def _read_once(path: Path, trust_code: bool) -> Ticket:
    root = _Root(path)
    try:
        meta = read_meta(root)
        _check_listing(root, meta["files"])
        for name, digest in meta["files"].items():
            if root.sha256(name) != digest:
                raise TicketError(f"{root.path / name} does not match its sha256 in ticket.json: the file was altered "
                                  "or damaged. Re-export the ticket, or ask its author for an intact copy.")
        masks = _read_arrays(root, "masks.npz")
        rewind = _read_arrays(root, "rewind.npz")
        weights = _read_arrays(root, "weights.npz")
        architecture = None if "weights_only" in meta else _read_text(root, "model.json")
    finally:
        root.close()
    if architecture is None:  # no network to rebuild or run: the arrays agree with each other
        shapes = {k: tuple(v.shape) for k, v in weights.items()}
        _check_arrays(root.path, meta, shapes, masks, rewind, weights, set(masks) & set(weights))
        _check_structure(root.path, meta, masks)
        return Ticket(root.path, meta, masks, rewind, weights, None, trust_code)
    budget = sum(int(v.size) for v in weights.values())
    model = build_architecture(architecture, root.path / "model.json", trust_code, budget)
    from tflottery.models.weights import weight_variables

    shapes = {k: tuple(int(d) for d in v.shape) for k, v in weight_variables(model).items()}
    _check_arrays(root.path, meta, shapes, masks, rewind, weights, set(shapes))  # pruning.prune may choose any weight
    _check_structure(root.path, meta, masks)
    _check_outputs(model, weights, root.path)
    return Ticket(root.path, meta, masks, rewind, weights, architecture, trust_code)


# --------------------------------------------------------------------------- ticket.json
def strict_json(text: str, where: Path, strings: bool = True):
    """JSON without duplicate keys, NaN, Infinity, integers past 2**53 or (with `strings`) control characters."""
    def pairs(items):
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            twice = sorted({k for k in keys if keys.count(k) > 1})
            raise TicketError(f"{where} repeats the key(s) {printable(twice)}: which one counts would be a guess; "
                              "refused.")
        return dict(items)

    def constant(name):
        raise TicketError(f"{where} holds {name}, which is no number: refused.")

    def integer(digits):
        if len(digits.lstrip("-")) > 16 or abs(int(digits)) > fmt.MAX_INT:
            raise TicketError(f"{where} holds an integer of {len(digits)} digits: past 2**53, refused.")
        return int(digits)

    def number(digits):
        value = float(digits)
        if not math.isfinite(value):
            raise TicketError(f"{where} holds {digits[:20]}, which is no finite number: refused.")
        return value

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_int=integer,
                           parse_float=number)
    except (json.JSONDecodeError, RecursionError) as error:
        raise TicketError(f"{where} is not valid JSON ({str(error)[:120]}): the ticket is damaged; re-export it.") from None
    if strings:
        _check_strings(value, where)
    return value


def _check_strings(value, where: Path) -> None:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000
                                           for c in node):
            raise TicketError(f"{where} holds a string with control characters or lone surrogates "
                              f"({printable(node, 40)}): refused.")


def read_meta(root: _Root) -> dict:
    path = root.path / "ticket.json"
    meta = strict_json(_read_text(root, "ticket.json"), path)
    if not isinstance(meta, dict):
        raise TicketError(f"{path} holds a {type(meta).__name__}, not the ticket's description: re-export it.")
    if meta.get("format_version") == 1:
        raise TicketError(f"{path}: a format 1 ticket (tflottery 0.1) keeps its architecture only in a "
                          "SavedModel, which tflottery no longer loads from shared files. Export the ticket "
                          "again with this version.")
    if meta.get("format") != fmt.FORMAT or not isinstance(meta.get("format_version"), int):
        raise TicketError(f"{path} is not a tflottery ticket description (no format {fmt.FORMAT!r}).")
    if meta["format_version"] > fmt.VERSION:
        raise TicketError(f"{path}: format_version {meta['format_version']} is newer than this tflottery reads "
                          f"({fmt.VERSION}); upgrade tflottery.")
    if meta["format_version"] < fmt.VERSION:
        raise TicketError(f"{path}: format_version {meta['format_version']} is older than this tflottery reads; "
                          "export the ticket again with this version.")
    if meta.get("digest") != fmt.digest_of(meta):
        raise TicketError(f"{path} does not match its own digest: ticket.json was edited or damaged after export. "
                          "Re-export the ticket.")
    _check_schema(path, meta)
    return meta


_SCHEMA = {"level": int, "replicate": int, "seed": int, "rewind_step": int, "branch": str, "model": dict,
           "pruned": list, "remaining": dict, "files": dict, "data": dict, "training": dict, "pruning": dict,
           "outputs": str}
_RANGES = {"level": fmt.MAX_LEVEL, "replicate": 1000, "seed": 2 ** 31 - 1, "rewind_step": 10 ** 9}


def _check_schema(path: Path, meta: dict) -> None:
    for key, kind in _SCHEMA.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise TicketError(f"{path}: field {key!r} is missing or not a {kind.__name__}; the ticket is damaged.")
    for key, high in _RANGES.items():
        if meta[key] < 0:
            raise TicketError(f"{path}: level, replicate, seed and rewind_step must be >= 0 ({key}={meta[key]}).")
        if meta[key] > high:
            raise TicketError(f"{path}: {key}={meta[key]} is past what a ticket may say (at most {high}): refused.")
    for key, value in (("branch", meta["branch"]), ("model.name", meta["model"].get("name")),
                       ("data.dataset", meta["data"].get("dataset"))):
        try:
            safe_component(value, key)
        except ConfigError as error:
            raise TicketError(f"{path}: {error}") from None
    if meta["outputs"] != "logits":
        raise TicketError(f"{path}: outputs={printable(meta['outputs'])}; tflottery tickets output logits.")
    if not all(isinstance(n, str) for n in meta["pruned"]) or len(set(meta["pruned"])) != len(meta["pruned"]):
        raise TicketError(f"{path}: 'pruned' must list each pruned kernel's name once.")
    for name, value in meta["remaining"].items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise TicketError(f"{path}: remaining[{printable(name)}]={value!r} is not a fraction in [0, 1].")
    if len(meta["files"]) > fmt.MAX_FILES:
        raise TicketError(f"{path} lists {len(meta['files'])} files; a ticket has at most {fmt.MAX_FILES}.")
    for name, digest in meta["files"].items():
        if not _safe_relative(name):
            raise TicketError(f"{path} lists the file {printable(name)}, which is not a plain path inside the ticket: "
                              "refused (a ticket names only its own files).")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise TicketError(f"{path}: the sha256 of {printable(name)} is not 64 hex digits.")
    required = fmt.DATA_FILES
    if "weights_only" in meta:
        only = meta["weights_only"]
        if not isinstance(only, dict) or not isinstance(only.get("why"), str) or not isinstance(only.get("inputs"), list) \
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= fmt.MAX_ACTIVATIONS
                           for d in only["inputs"]):
            raise TicketError(f"{path}: 'weights_only' must say why and the input shape (positive integers); the "
                              "ticket is damaged.")
        if "model.json" in meta["files"]:
            raise TicketError(f"{path} is weights-only and lists model.json: the ticket is inconsistent.")
        required = fmt.WEIGHTS_FILES
    missing = [f for f in required if f not in meta["files"]]
    if missing:
        raise TicketError(f"{path} does not list {missing}: not a complete ticket.")


def _safe_relative(name) -> bool:
    if not isinstance(name, str) or not name or len(name) > 300:
        return False
    parts = name.split("/")
    return (len(parts) <= fmt.MAX_DEPTH + 1 and all(_NAME.match(p) and p not in (".", "..") for p in parts)
            and parts[0] not in fmt.DERIVED)


# --------------------------------------------------------------------------- files
def _check_listing(root: _Root, files: dict) -> None:
    """Exactly the listed files (plus ticket.json and derived tflite/) exist, all regular, no links anywhere."""
    found = root.entries()
    for name in files:
        if found.get(name) == "dir":
            raise TicketError(f"{root.path / name} is a folder where ticket.json lists a file: refused.")
    regular = {name for name, kind in found.items() if kind == "file" and name.split("/")[0] not in fmt.DERIVED}
    extra = regular - set(files) - {"ticket.json"}
    missing = set(files) - regular
    if missing and root._replaced():
        raise _Vanished()
    if missing:
        raise TicketError(f"{root.path / sorted(missing)[0]} is missing from the ticket (listed in ticket.json); "
                          "re-export the ticket.")
    if extra:
        raise TicketError(f"{root.path / printable(sorted(extra)[0])} is in the ticket directory but not in ticket.json: "
                          "the ticket was altered. Remove the file or re-export the ticket.")


def _read_text(root: _Root, name: str) -> str:
    try:
        return root.read(name, fmt.MAX_JSON_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise TicketError(f"{root.path / name} is not UTF-8 text: the ticket is damaged; re-export it.") from None
    except TicketError:
        if not os.path.lexists(root.path / name):
            raise TicketError(f"{root.path} is not a ticket: {root.path / name} is missing (export one with "
                              "`tflottery export`).") from None
        raise


# --------------------------------------------------------------------------- arrays
def _read_arrays(root: _Root, name: str) -> dict:
    """Arrays of an .npz in the ticket: dtypes and sizes checked from the headers before decompression."""
    path = root.path / name
    allowed = fmt.ARRAY_DTYPES[name]
    try:
        with os.fdopen(root.open(name), "rb") as f, zipfile.ZipFile(f) as archive:
            members = archive.infolist()
            if len(members) > fmt.MAX_ARRAYS:
                raise TicketError(f"{path} holds {len(members)} arrays; at most {fmt.MAX_ARRAYS}.")
            total, arrays = 0, {}
            for member in members:
                if not member.filename.endswith(".npy") or "/" in member.filename or not _NAME.match(member.filename):
                    raise TicketError(f"{path}: member {printable(member.filename)} is not an array of the ticket.")
                with archive.open(member) as raw:
                    version = np.lib.format.read_magic(raw)
                    if version not in ((1, 0), (2, 0)):
                        raise TicketError(f"{path}: array format {version} is not one numpy writes for tickets.")
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, fortran, dtype = read_header(raw)
                    if dtype.hasobject:
                        raise TicketError(f"{path} holds pickled objects, which tflottery never loads: refused.")
                    if dtype.str not in allowed or fortran:
                        raise TicketError(f"{path}: {printable(member.filename)} is {dtype.str}"
                                          f"{' (Fortran order)' if fortran else ''}; a ticket's {name} holds only "
                                          f"{' or '.join(allowed)} arrays in C order.")
                    elements = int(np.prod(shape, dtype=np.int64))
                    total += elements
                    if total > fmt.MAX_ELEMENTS:
                        raise TicketError(f"{path} declares more than {fmt.MAX_ELEMENTS:,} values: refused.")
                    header = raw.tell()
                    if member.file_size != header + elements * dtype.itemsize:
                        raise TicketError(f"{path}: {printable(member.filename)} declares {elements:,} values but "
                                          f"holds {member.file_size - header:,} bytes: refused.")
                with archive.open(member) as raw:
                    array = np.lib.format.read_array(raw, allow_pickle=False)
                if dtype.kind == "b" and array.size and array.view(np.uint8).max() > 1:
                    raise TicketError(f"{path}: {printable(member.filename)} holds bytes other than 0 and 1: not a "
                                      "boolean mask; refused.")
                arrays[weight_key(member.filename[:-4])] = array
            return arrays
    except TicketError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError, NotImplementedError,
            RuntimeError, MemoryError) as error:
        raise TicketError(f"{path} is not a readable .npz archive of arrays ({str(error)[:160]}): "
                          "re-export the ticket.") from None


def _check_weight_counts(root: Path, meta: dict, masks: dict, total: int) -> None:
    """ticket.json's optional `weights` (counts and the fraction of every trainable weight kept) equal to what the
    masks count, its dense count within the model's weights."""
    from tflottery.pruning.masks import weight_counts

    given = meta.get("weights")
    if given is None:
        return
    dense = given.get("dense") if isinstance(given, dict) else None
    if not isinstance(dense, int) or isinstance(dense, bool) or not 0 <= dense <= total:
        raise TicketError(f"{root / 'ticket.json'}: weights.dense={printable(repr(dense))} is not a count of the "
                          f"model's {total:,} weights: the ticket is damaged.")
    expected = weight_counts(masks, dense)
    numbers = set(given) == set(expected) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in given.values())
    if not numbers or any(abs(given[k] - v) > 1e-9 for k, v in expected.items()):
        raise TicketError(f"{root / 'ticket.json'}: weights={printable(json.dumps(given), 200)} but the masks count "
                          f"{json.dumps(expected)}: masks and description disagree.")


def _check_arrays(root: Path, meta: dict, shapes: dict, masks: dict, rewind: dict, weights: dict,
                  kernels: set) -> None:
    """`kernels`: the model's prunable variables (`tflottery.pruning.targets`)."""
    from tflottery.pruning.masks import remaining

    pruned = set(meta["pruned"])
    if set(masks) != pruned:
        raise TicketError(f"{root / 'masks.npz'} has masks for {printable(sorted(masks), 200)} but ticket.json prunes "
                          f"{printable(sorted(pruned), 200)}: the ticket is inconsistent.")
    if not pruned <= kernels:
        raise TicketError(f"{root / 'ticket.json'} prunes {printable(sorted(pruned - kernels), 200)}, which are not "
                          f"prunable weights of the model in model.json (prunable: {printable(sorted(kernels)[:8], 200)}).")
    for name, mask in masks.items():
        if mask.shape != shapes[name]:
            raise TicketError(f"{root / 'masks.npz'}: mask {printable(name)} has shape {mask.shape}, but the model's "
                              f"{printable(name)} has shape {shapes[name]}.")
    _check_weight_counts(root, meta, masks, sum(int(np.prod(s)) for s in shapes.values()))
    fractions = remaining(masks)
    for name, value in fractions.items():
        if name not in meta["remaining"] or abs(meta["remaining"][name] - value) > 1e-9:
            raise TicketError(f"{root / 'masks.npz'}: {printable(name)} keeps {value:.6f} of its weights but ticket.json "
                              f"records {meta['remaining'].get(name)!r}: masks and description disagree.")
    for label, arrays in (("rewind.npz", rewind), ("weights.npz", weights)):
        if set(arrays) != set(shapes):
            raise TicketError(f"{root / label} does not hold exactly the model's weights: missing "
                              f"{printable(sorted(set(shapes) - set(arrays))[:5], 200)}, unexpected "
                              f"{printable(sorted(set(arrays) - set(shapes))[:5], 200)}.")
        for name, value in arrays.items():
            if value.shape != shapes[name]:
                raise TicketError(f"{root / label}: {printable(name)} has shape {value.shape}; the model needs "
                                  f"floats of shape {shapes[name]}.")
            if not np.all(np.isfinite(value)):
                raise TicketError(f"{root / label}: {printable(name)} holds NaN or infinite values: refused.")
            if name in masks and np.any(value[~masks[name]] != 0):
                raise TicketError(f"{root / label}: {printable(name)} has non-zero weights where its mask prunes them.")


def _check_structure(root: Path, meta: dict, masks: dict) -> None:
    """The masks keep the structure ticket.json records (N:M groups, blocks): a ticket altered to break it, which a
    runtime relying on it would compute wrongly, is refused."""
    from types import SimpleNamespace

    from tflottery.core.errors import ConfigError
    from tflottery.core.names import layer_of
    from tflottery.pruning.resolve import structure_of, upgrade

    pruning = upgrade(dict(meta.get("pruning") or {}))
    if not pruning.get("structure"):
        return
    try:
        cls, settings = structure_of(SimpleNamespace(structure=pruning["structure"]))
        exempt = set(pruning.get("unpruned") or ())
        pruned = [k for k in masks if layer_of(k) not in exempt]
        structure = cls(settings, {k: "dense" if m.ndim == 2 else "conv" for k, m in masks.items()},
                        {k: m.shape for k, m in masks.items()}, pruned)
    except (ConfigError, TypeError, ValueError, KeyError) as error:
        raise TicketError(f"{root / 'ticket.json'} records a structure this tflottery cannot check "
                          f"({printable(pruning['structure'], 200)}): {error}") from None
    broken = [k for k in pruned if not structure.holds(k, masks[k])]
    if broken:
        raise TicketError(f"{root / 'masks.npz'}: the masks of {printable(broken, 200)} break the ticket's structure "
                          f"{printable(pruning['structure'], 200)}: the ticket was altered; re-export it from its run.")


# --------------------------------------------------------------------------- architecture
def check_architecture(config, where: Path) -> None:
    """Refuse any class outside the built-in allowlist, any field that carries code, and activity regularisers."""
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            code = fmt.CODE_KEYS & set(node)
            if code or node.get("class_name") == "Lambda":
                raise TicketError(f"{where}: the architecture carries code (a Lambda layer, {sorted(code)}). "
                                  "tflottery does not run code from shared files; pass trust_code=True "
                                  "(--trust_code) only for a ticket whose author you trust.")
            if "class_name" in node:
                name = node["class_name"]
                if name not in fmt.SAFE_CLASSES or node.get("module", None) not in fmt.SAFE_MODULES \
                        or node.get("registered_name") not in (None, name):
                    raise TicketError(f"{where}: layer or object class {printable(name, 60)} is not a built-in Keras "
                                      "class tflottery rebuilds from shared files; pass trust_code=True (--trust_code) "
                                      "only for a ticket whose author you trust.")
            if node.get("class_name") in STOCHASTIC and isinstance(node.get("config"), dict):
                _check_stochastic(node["class_name"], node["config"], where)
            if node.get("activity_regularizer") is not None:
                raise TicketError(f"{where}: a layer has an activity regulariser, which tickets do not carry (it adds "
                                  "to the loss of whoever trains it): refused.")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


STOCHASTIC = {"Dropout": "rate", "SpatialDropout1D": "rate", "SpatialDropout2D": "rate", "SpatialDropout3D": "rate",
              "AlphaDropout": "rate", "GaussianDropout": "rate", "GaussianNoise": "stddev"}
MAX_NOISE = 1e3  # a noise stddev in units of inputs scaled to [0, 1]: beyond this the layer erases its input


def _check_stochastic(name: str, config: dict, where: Path) -> None:
    """A dropout rate in [0, 1) and a noise stddev in [0, MAX_NOISE]: what the layer computes while training (a
    forward pass at inference, which the ticket's check runs, never sees it)."""
    field = STOCHASTIC[name]
    value = config.get(field)
    high, closed = (MAX_NOISE, True) if field == "stddev" else (1.0, False)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value \
        and (value <= high if closed else value < high)
    if not ok:
        shown = repr(value) if isinstance(value, (int, float)) else printable(str(value), 40)
        raise TicketError(f"{where}: layer {printable(str(config.get('name')), 60)} ({name}) has {field}="
                          f"{shown}, outside {'[0, %g]' % high if closed else '[0, 1)'}: whoever "
                          "trains this ticket would train on noise; refused.")


def build_architecture(text: str, where: Path, trust_code: bool = False, budget: Optional[int] = None):
    """The tf_keras model of an architecture JSON; with `budget`, refused before it allocates more than
    that many weights (a variable creator checks each variable's shape before it exists), and refused
    when a layer would output more than MAX_ACTIVATIONS values per example."""
    import tensorflow as tf

    from tflottery.core.keras_compat import keras

    config = strict_json(text, where, strings=False) if not trust_code else json.loads(text)
    if not isinstance(config, dict) or config.get("class_name") not in ("Functional", "Sequential", "Model"):
        raise TicketError(f"{where} is not a Keras Functional or Sequential model.")
    if not trust_code:
        check_architecture(config, where)
        _check_strings(config, where)
    created = [0]

    def guard(next_creator, **kwargs):
        shape, initial = kwargs.get("shape"), kwargs.get("initial_value")
        if budget is not None:
            if shape is None and not callable(initial):
                shape = np.shape(initial)  # a value that exists already (Keras' own counters)
            if shape is None or not tf.TensorShape(shape).is_fully_defined():
                raise TicketError(f"{where}: a layer creates a weight of unknown shape: refused.")
            created[0] += int(np.prod(tf.TensorShape(shape).as_list(), dtype=np.int64))
            if created[0] > budget + 1024:
                raise TicketError(f"{where} declares more weights than weights.npz holds ({budget:,}): the "
                                  "architecture and the arrays disagree; refused before allocating them.")
        return next_creator(**kwargs)

    try:
        with tf.variable_creator_scope(guard):
            model = keras.models.model_from_json(text)
    except TicketError:
        raise
    except Exception as error:  # noqa: BLE001 — Keras raises many kinds for a malformed config
        raise TicketError(f"{where}: the architecture cannot be rebuilt ({type(error).__name__}: "
                          f"{printable(str(error).splitlines()[0][:200] if str(error) else '', 220)}).") from None
    for layer in model.layers:
        scores = _attention_scores(layer)
        if scores > fmt.MAX_ACTIVATIONS:
            raise TicketError(f"{where}: attention layer {printable(layer.name)} would compute {scores:,} scores per "
                              f"example (heads x queries x keys), more than {fmt.MAX_ACTIVATIONS:,}: refused before "
                              "computing anything.")
        shapes = layer.output_shape if isinstance(layer.output_shape, list) else [layer.output_shape]
        for shape in shapes:
            values = 1
            for dim in (shape[1:] if shape else ()):
                values *= dim if dim is not None else 1
            if values > fmt.MAX_ACTIVATIONS:
                raise TicketError(f"{where}: layer {printable(layer.name)} would output {values:,} values per "
                                  f"example, more than {fmt.MAX_ACTIVATIONS:,}: refused before computing anything.")
    return model


def _attention_scores(layer) -> int:
    """The most attention scores `layer` computes per example at any of its calls (0 for a layer that is not
    attention): heads x query positions x key positions, which no output shape shows (the config's own
    query_shape need not be the shape it is called on)."""
    if type(layer).__name__ != "MultiHeadAttention":
        return 0
    most = 0
    for node in layer._inbound_nodes:
        args, kwargs = list(node.call_args), dict(node.call_kwargs)
        query = args[0] if args else kwargs.get("query")
        value = args[1] if len(args) > 1 else kwargs.get("value", query)
        key = args[2] if len(args) > 2 else kwargs.get("key", value)
        positions = [int(np.prod([d or 1 for d in tuple(t.shape)[1:-1]], dtype=np.int64)) for t in (query, key)]
        most = max(most, int(layer._num_heads) * positions[0] * positions[1])
    return most


def _check_outputs(model, weights: dict, where: Path) -> None:
    """The network at its trained weights computes finite logits (on a blank example and a mid-grey one)."""
    from tflottery.models.weights import set_weights

    set_weights(model, weights)
    inputs = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    probes = []
    for input_shape in inputs:  # a network may take several inputs
        shape = tuple(int(d) if d is not None else 1 for d in input_shape[1:])
        probes.append(np.stack([np.zeros(shape, np.float32), np.full(shape, 0.5, np.float32)]))
    try:
        outputs = model(probes if len(probes) > 1 else probes[0], training=False)
    except Exception as error:  # noqa: BLE001
        raise TicketError(f"{where}: the network does not run ({type(error).__name__}): refused.") from None
    if not all(np.all(np.isfinite(np.asarray(o))) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])):
        raise TicketError(f"{where}: the network computes NaN or infinite outputs at its trained weights (a layer "
                          "that divides by zero or by a negative variance?): refused.")
