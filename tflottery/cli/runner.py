"""Running a fire command the way users need: flags checked first, errors as one line, a quiet start.

* Every flag is checked against the command before anything runs: fire itself would call a
  command with its defaults and only then complain about a mistyped flag (`--levle=1`).
* A `TflotteryError` (any user error) is printed as one line on stderr, exit code 2; anything
  else is a bug and keeps its traceback.
* TensorFlow's C++ start-up lines (absl's pre-init notice, oneDNN and CUDA probes) are
  dropped from stderr unless the user set TF_CPP_MIN_LOG_LEVEL themselves: their setting wins.
"""
from __future__ import annotations

import atexit
import inspect
import os
import re
import sys
import threading
from typing import Callable, Optional

from tflottery.errors import ConfigError, TflotteryError

NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.]+:\d+\] .*"
    r"|E\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.]+:\d+\] .*(cuInit|CUDA|cuda|cuDNN|cuFFT|cuBLAS|TensorRT).*)$")


def quiet_tensorflow_startup() -> None:
    """Filter TensorFlow's C++ log lines out of this process's stderr (fd 2), children included."""
    import tflottery

    if tflottery.USER_TF_LOG_LEVEL is not None or getattr(quiet_tensorflow_startup, "active", False):
        return
    quiet_tensorflow_startup.active = True
    read_end, write_end = os.pipe()
    original = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not NOISE.match(line.decode(errors="replace").rstrip("\r\n")):
                    os.write(original, line)

    thread = threading.Thread(target=pump, name="tflottery-stderr", daemon=True)
    thread.start()

    def restore():
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end: the pump sees the end and stops
        thread.join(timeout=5)

    atexit.register(restore)


def fire_args(argv: Optional[list]) -> list:
    """Commands take **flags, so fire would pass --help to them as a flag: hand it to fire instead."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args and any(a in ("--help", "-h") for a in args):
        args = [a for a in args if a not in ("--help", "-h")] + ["--", "--help"]
    return args


def check_flags(function: Callable, args: list, extra: Optional[Callable[[str], None]] = None) -> None:
    """Refuse flags the command does not take, and surplus positional arguments, before it runs."""
    if "--" in args:
        args = args[:args.index("--")]
    params = inspect.signature(function).parameters
    named = {n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    takes_flags = any(p.kind == p.VAR_KEYWORD for p in params.values())
    positional = [n for n, p in params.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params.values())
    given, loose, skip = set(), [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg.startswith("--") and len(arg) > 2:
            name = arg[2:].split("=", 1)[0].replace("-", "_")
            if name not in named and name.startswith("no") and name[2:] in named:
                name = name[2:]
            if name in named:
                given.add(name)
                skip = "=" not in arg and i + 1 < len(args) and not args[i + 1].startswith("--")
            elif takes_flags and extra is not None:
                extra(name)
                skip = "=" not in arg and i + 1 < len(args) and not args[i + 1].startswith("--")
            else:
                raise ConfigError(f"Unknown flag --{name} for {function.__name__}: it takes "
                                  f"{', '.join('--' + n for n in sorted(named)) or 'no flags'}.")
        else:
            loose.append(arg)
    free = [n for n in positional if n not in given]
    if len(loose) > len(free) and not varargs:
        raise ConfigError(f"{function.__name__} takes {len(free)} positional argument(s) "
                          f"({', '.join(free) or 'none'}), got {len(loose)}: {' '.join(loose)}.")


def run_fire(component, name: str, argv: Optional[list] = None, extra_flags: Optional[dict] = None) -> None:
    """Fire over `component` (a function, or a dict of command functions) with the guarantees above.

    `extra_flags` maps a command to a checker for the names its **flags accept.
    """
    import fire

    quiet_tensorflow_startup()
    args = fire_args(argv)
    try:
        function, rest = component, args
        if isinstance(component, dict):
            head = args[0] if args and not args[0].startswith("-") else None
            if head is not None and head not in component:
                raise ConfigError(f"Unknown command {head!r}: use one of {', '.join(component)}.")
            function, rest = component.get(head), args[1:]
        if function is not None:
            check_flags(function, rest, (extra_flags or {}).get(function))
        fire.Fire(component, command=args, name=name)
    except TflotteryError as error:
        print(f"tflottery: error: {error}", file=sys.stderr)
        sys.exit(2)
