"""Names renamed in 0.4, kept for one release: the old name warns (DeprecationWarning) and gives the new object."""
from __future__ import annotations

import importlib
import warnings
from typing import Callable


def renamed(module: str, names: dict) -> Callable:
    """A module `__getattr__` for `names` {old: (module, new name)}: each use of an old name warns, naming the new."""
    def __getattr__(name: str):
        if name in names:
            home, new = names[name]
            warnings.warn(f"{module}.{name} is now {home}.{new}; the old name goes in 0.5.", DeprecationWarning,
                          stacklevel=2)
            return getattr(importlib.import_module(home), new)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def moved_module(old: str, new: str) -> None:
    """Warn that module `old` is now `new` (called by the old module's stub, which re-exports the new one)."""
    warnings.warn(f"{old} is now {new}; the old module goes in 0.5.", DeprecationWarning, stacklevel=3)
