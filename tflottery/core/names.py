"""Names that become paths, and the names of weights.

Every name a user or a shared file gives that becomes part of a path (a model name, a branch,
a run, a recipe, an output component) passes `safe_component` first: one rule, in one place.
Weights are addressed as "<layer>/<variable>" (`fc1/kernel`) in memory and stored as
"<layer>__<variable>" in .npz files, so layer names may hold neither "/" nor "__".
"""
from __future__ import annotations

import fnmatch
import re

from tflottery.core.errors import ConfigError

MAX_COMPONENT = 120
TICKET = "ticket"  # the branch key of the IMP ticket itself
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=@-]*$")


def safe_component(name: object, what: str = "name") -> str:
    """`name` if it can be one path component (letters, digits, ._+=@-, at most 120 characters, no
    separator, no `..`, no control character, not starting with a dot); else a ConfigError naming it."""
    if not isinstance(name, str):
        raise ConfigError(f"{what}={name!r} must be a string.")
    if not name or len(name) > MAX_COMPONENT or not _SAFE.match(name) or ".." in name:
        raise ConfigError(f"{what}={printable(name)} cannot name a file or folder: use letters, digits and . _ + = @ - "
                          f"(at most {MAX_COMPONENT} characters, no '/', no '..', not starting with '.').")
    return name


def printable(text: object, limit: int = 80) -> str:
    """`text` for a message: quoted, control characters and lone surrogates escaped, cut to `limit`."""
    shown = repr(str(text))
    shown = shown.encode("ascii", "backslashreplace").decode("ascii")
    return shown if len(shown) <= limit else shown[:limit - 4] + "...'"


def storage_key(weight: str) -> str:
    """"fc1/kernel" -> "fc1__kernel" (how .npz files store it)."""
    return weight.replace("/", "__")


def weight_key(stored: str) -> str:
    """"fc1__kernel" -> "fc1/kernel"."""
    return stored.replace("__", "/")


def layer_of(weight: str) -> str:
    """"fc1/kernel" -> "fc1"; "mha/query/kernel" -> "mha"."""
    return weight.split("/")[0]


def is_layer_kernel(weight: str) -> bool:
    """Whether `weight` is a top-level layer's own kernel ("fc1/kernel"), not a sublayer's or another variable."""
    return weight.count("/") == 1 and weight.endswith("/kernel")


def target_label(weight: str) -> str:
    """How tables name a pruning target: its layer ("fc1") for a layer's kernel, its path inside its layer
    otherwise ("mha/query", "lstm/lstm_cell/recurrent_kernel")."""
    return layer_of(weight) if is_layer_kernel(weight) else \
        weight[:-len("/kernel")] if weight.endswith("/kernel") else weight


def matches(path: str, pattern: str) -> bool:
    """Whether `pattern` names the target `path`: its layer's name ("lstm": every target of that layer), the path
    ("mha/query/kernel"), or a glob over paths or layer names ("*/attention_output/*", "enc_*")."""
    layer = layer_of(path)
    return pattern in (path, layer) or fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(layer, pattern)


def selected(paths, patterns) -> list:
    """The paths of `paths` that any of `patterns` names, in their order."""
    return [p for p in paths if any(matches(p, pattern) for pattern in patterns)]
