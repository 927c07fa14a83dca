"""Reading a ticket as untrusted input: every check before any use, every failure a `TicketError`.

Tickets are shared files. Reading one never follows a link, never opens anything but the
regular files listed in ticket.json inside the ticket directory, never lets a value of the
ticket become a path, never unpickles, never decompresses an array before its declared size
passed the limits, and never runs code from the file: the architecture is rebuilt from
built-in Keras layers only (a `Lambda` or custom layer is refused unless `trust_code=True`),
first as a graph without memory, to compare its shapes with the arrays. Masks must be
boolean, cover exactly the pruned kernels with their shapes, and match the recorded sparsity;
weights must be finite and zero where pruned.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery.core.errors import TicketError
from tflottery.tickets import format as fmt

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass
class Ticket:
    """A verified ticket: what ticket.json says, and the arrays and architecture it holds."""

    path: Path
    meta: dict
    masks: dict
    rewind: dict
    weights: dict
    architecture: str  # Keras JSON
    trust_code: bool = False

    @property
    def digest(self) -> str:
        return self.meta["digest"]

    def build(self, weights: str = "trained"):
        """The plain tf_keras model at its trained or rewind weights (masked)."""
        from tflottery.models.weights import set_weights

        model = build_architecture(self.architecture, self.path / "model.json", self.trust_code)
        set_weights(model, self.weights if weights == "trained" else self.rewind)
        return model


def read_ticket(path: "str | Path", trust_code: bool = False) -> Ticket:
    """Verify everything in a ticket directory and return its contents."""
    root = Path(path)
    if not root.is_dir() or root.is_symlink():
        raise TicketError(f"{root} is not a ticket: a ticket is a directory (made by `tflottery export`) holding "
                          "ticket.json.")
    meta = read_meta(root)
    _check_listing(root, meta["files"])
    for name, digest in meta["files"].items():
        if _sha256(root, name) != digest:
            raise TicketError(f"{root / name} does not match its sha256 in ticket.json: the file was altered or "
                              "damaged. Re-export the ticket, or ask its author for an intact copy.")
    masks = _read_arrays(root, "masks.npz")
    rewind = _read_arrays(root, "rewind.npz")
    weights = _read_arrays(root, "weights.npz")
    architecture = _read_text(root, "model.json")
    budget = sum(int(v.size) for v in weights.values())
    shapes = architecture_shapes(architecture, root / "model.json", trust_code, budget)
    _check_arrays(root, meta, shapes, masks, rewind, weights)
    return Ticket(root, meta, masks, rewind, weights, architecture, trust_code)


# --------------------------------------------------------------------------- ticket.json
def read_meta(root: Path) -> dict:
    path = root / "ticket.json"
    text = _read_text(root, "ticket.json")
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise TicketError(f"{path} is not valid JSON ({str(error)[:120]}): the ticket is damaged; re-export it.") from None
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


def _check_schema(path: Path, meta: dict) -> None:
    for key, kind in _SCHEMA.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise TicketError(f"{path}: field {key!r} is missing or not a {kind.__name__}; the ticket is damaged.")
    if meta["level"] < 0 or meta["replicate"] < 0 or meta["rewind_step"] < 0:
        raise TicketError(f"{path}: level, replicate and rewind_step must be >= 0.")
    if not isinstance(meta["model"].get("name"), str):
        raise TicketError(f"{path}: model.name is missing.")
    if not all(isinstance(n, str) for n in meta["pruned"]) or len(set(meta["pruned"])) != len(meta["pruned"]):
        raise TicketError(f"{path}: 'pruned' must list each pruned kernel's name once.")
    for name, value in meta["remaining"].items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise TicketError(f"{path}: remaining[{name!r}]={value!r} is not a fraction in [0, 1].")
    if len(meta["files"]) > fmt.MAX_FILES:
        raise TicketError(f"{path} lists {len(meta['files'])} files; a ticket has at most {fmt.MAX_FILES}.")
    for name, digest in meta["files"].items():
        if not _safe_relative(name):
            raise TicketError(f"{path} lists the file {name!r}, which is not a plain path inside the ticket: "
                              "refused (a ticket names only its own files).")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise TicketError(f"{path}: the sha256 of {name!r} is not 64 hex digits.")
    missing = [f for f in fmt.DATA_FILES if f not in meta["files"]]
    if missing:
        raise TicketError(f"{path} does not list {missing}: not a complete ticket.")


def _safe_relative(name) -> bool:
    if not isinstance(name, str) or not name or len(name) > 300:
        return False
    parts = name.split("/")
    return all(_NAME.match(p) and p not in (".", "..") for p in parts) and parts[0] not in fmt.DERIVED


# --------------------------------------------------------------------------- files
def _check_listing(root: Path, files: dict) -> None:
    """Exactly the listed files (plus ticket.json and derived tflite/) exist, all regular, no links."""
    found = set()
    for folder, dirs, names in os.walk(root, followlinks=False):
        rel = Path(folder).relative_to(root)
        if rel.parts and rel.parts[0] in fmt.DERIVED:
            continue
        for name in dirs + names:
            entry = Path(folder) / name
            info = entry.lstat()
            if stat.S_ISLNK(info.st_mode):
                raise TicketError(f"{entry} is a symbolic link: tickets hold only regular files; refused.")
            if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
                raise TicketError(f"{entry} is not a regular file (a device, socket or pipe): refused.")
            if stat.S_ISREG(info.st_mode):
                found.add((rel / name).as_posix())
        if len(found) > fmt.MAX_FILES + 1:
            raise TicketError(f"{root} holds more than {fmt.MAX_FILES} files: not a ticket.")
    extra = found - set(files) - {"ticket.json"}
    missing = set(files) - found
    if missing:
        raise TicketError(f"{root / sorted(missing)[0]} is missing from the ticket (listed in ticket.json); "
                          "re-export the ticket.")
    if extra:
        raise TicketError(f"{root / sorted(extra)[0]} is in the ticket directory but not in ticket.json: the ticket "
                          "was altered. Remove the file or re-export the ticket.")


def _open(root: Path, name: str) -> int:
    """A file descriptor for a regular file inside `root`, never following a link at any depth."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        parts = name.split("/")
        for part in parts[:-1]:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    except OSError as error:
        raise TicketError(f"{root / name} cannot be opened as a regular file of the ticket ({error.strerror}).") from None
    finally:
        os.close(fd)
    info = os.fstat(file_fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > fmt.MAX_FILE_BYTES:
        os.close(file_fd)
        raise TicketError(f"{root / name} is not a regular file of at most {fmt.MAX_FILE_BYTES >> 30} GiB: refused.")
    return file_fd


def _sha256(root: Path, name: str) -> str:
    digest = hashlib.sha256()
    with os.fdopen(_open(root, name), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_bytes(root: Path, name: str, limit: int) -> bytes:
    with os.fdopen(_open(root, name), "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise TicketError(f"{root / name} is larger than {limit >> 20} MiB: not a ticket file.")
    return data


def _read_text(root: Path, name: str) -> str:
    if not (root / name).exists() and not (root / name).is_symlink():
        raise TicketError(f"{root} is not a ticket: {root / name} is missing (export one with `tflottery export`).")
    try:
        return _read_bytes(root, name, fmt.MAX_JSON_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise TicketError(f"{root / name} is not UTF-8 text: the ticket is damaged; re-export it.") from None


# --------------------------------------------------------------------------- arrays
def _read_arrays(root: Path, name: str) -> dict:
    """Arrays of an .npz in the ticket: sizes and dtypes checked from the headers before decompression."""
    path = root / name
    problem = (f"{path} is not a readable .npz archive of arrays", "re-export the ticket")
    try:
        with os.fdopen(_open(root, name), "rb") as f, zipfile.ZipFile(f) as archive:
            members = archive.infolist()
            if len(members) > fmt.MAX_ARRAYS:
                raise TicketError(f"{path} holds {len(members)} arrays; at most {fmt.MAX_ARRAYS}.")
            total, arrays = 0, {}
            for member in members:
                if not member.filename.endswith(".npy") or "/" in member.filename:
                    raise TicketError(f"{path}: member {member.filename!r} is not an array of the ticket.")
                with archive.open(member) as raw:
                    version = np.lib.format.read_magic(raw)
                    if version not in ((1, 0), (2, 0)):
                        raise TicketError(f"{path}: array format {version} is not one numpy writes for tickets.")
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(raw)
                    if dtype.hasobject:
                        raise TicketError(f"{path} holds pickled objects, which tflottery never loads: refused.")
                    total += int(np.prod(shape, dtype=np.int64))
                    if total > fmt.MAX_ELEMENTS:
                        raise TicketError(f"{path} declares more than {fmt.MAX_ELEMENTS:,} values: refused.")
                with archive.open(member) as raw:
                    arrays[member.filename[:-4].replace("__", "/")] = np.lib.format.read_array(raw, allow_pickle=False)
            return arrays
    except TicketError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError, NotImplementedError,
            RuntimeError) as error:
        raise TicketError(f"{problem[0]} ({str(error)[:160]}): {problem[1]}.") from None


def _check_arrays(root: Path, meta: dict, shapes: dict, masks: dict, rewind: dict, weights: dict) -> None:
    from tflottery.pruning.masks import remaining

    pruned = set(meta["pruned"])
    kernels = {k for k in shapes if k.endswith("/kernel")}
    if set(masks) != pruned:
        raise TicketError(f"{root / 'masks.npz'} has masks for {sorted(masks)} but ticket.json prunes "
                          f"{sorted(pruned)}: the ticket is inconsistent.")
    if not pruned <= kernels:
        raise TicketError(f"{root / 'ticket.json'} prunes {sorted(pruned - kernels)}, which are not kernels of the "
                          f"model in model.json (kernels: {sorted(kernels)[:8]}).")
    for name, mask in masks.items():
        if mask.dtype != np.bool_:
            raise TicketError(f"{root / 'masks.npz'}: mask {name!r} has dtype {mask.dtype}, not bool.")
        if mask.shape != shapes[name]:
            raise TicketError(f"{root / 'masks.npz'}: mask {name!r} has shape {mask.shape}, but the model's {name} "
                              f"has shape {shapes[name]}.")
    fractions = remaining(masks)
    for name, value in fractions.items():
        if name not in meta["remaining"] or abs(meta["remaining"][name] - value) > 1e-9:
            raise TicketError(f"{root / 'masks.npz'}: {name} keeps {value:.6f} of its weights but ticket.json records "
                              f"{meta['remaining'].get(name)!r}: masks and description disagree.")
    for label, arrays in (("rewind.npz", rewind), ("weights.npz", weights)):
        if set(arrays) != set(shapes):
            raise TicketError(f"{root / label} does not hold exactly the model's weights: missing "
                              f"{sorted(set(shapes) - set(arrays))[:5]}, unexpected {sorted(set(arrays) - set(shapes))[:5]}.")
        for name, value in arrays.items():
            if value.shape != shapes[name] or value.dtype.kind != "f":
                raise TicketError(f"{root / label}: {name} has shape {value.shape} and dtype {value.dtype}; the model "
                                  f"needs floats of shape {shapes[name]}.")
            if not np.all(np.isfinite(value)):
                raise TicketError(f"{root / label}: {name} holds NaN or infinite values: refused.")
            if name in masks and np.any(value[~masks[name]] != 0):
                raise TicketError(f"{root / label}: {name} has non-zero weights where its mask prunes them.")


# --------------------------------------------------------------------------- architecture
def check_architecture(config, where: Path) -> None:
    """Refuse any class outside the built-in allowlist and any field that carries code."""
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
                    raise TicketError(f"{where}: layer or object class {str(name)[:60]!r} is not a built-in Keras class "
                                      "tflottery rebuilds from shared files; pass trust_code=True (--trust_code) "
                                      "only for a ticket whose author you trust.")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def build_architecture(text: str, where: Path, trust_code: bool = False, budget: Optional[int] = None):
    """The tf_keras model of an architecture JSON; with `budget`, refused before it allocates more than
    that many weights (a variable creator checks each variable's shape before it exists)."""
    import tensorflow as tf

    from tflottery.core.keras_compat import keras

    try:
        config = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise TicketError(f"{where} is not valid JSON ({str(error)[:120]}).") from None
    if not isinstance(config, dict) or config.get("class_name") not in ("Functional", "Sequential", "Model"):
        raise TicketError(f"{where} is not a Keras Functional or Sequential model.")
    if not trust_code:
        check_architecture(config, where)
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
            return keras.models.model_from_json(text)
    except TicketError:
        raise
    except Exception as error:  # noqa: BLE001 — Keras raises many kinds for a malformed config
        raise TicketError(f"{where}: the architecture cannot be rebuilt ({type(error).__name__}: "
                          f"{str(error).splitlines()[0][:200] if str(error) else ''}).") from None


def architecture_shapes(text: str, where: Path, trust_code: bool = False, budget: Optional[int] = None) -> dict:
    """{"<layer>/<variable>": shape} of an architecture, built within a weight budget."""
    from tflottery.models.weights import weight_variables

    model = build_architecture(text, where, trust_code, budget)
    return {k: tuple(int(d) for d in v.shape) for k, v in weight_variables(model).items()}
