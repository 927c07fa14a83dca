"""Running a fire command the way users need: flags checked first, errors as one line, a quiet start.

* Every flag is checked against the command before anything runs: fire itself would call a
  command with its defaults and only then complain about a mistyped flag (`--levle=1`).
* A `TflotteryError` (any user error) is printed as one line on stderr, exit code 2; anything
  else is a bug and keeps its traceback.
* TensorFlow's C++ start-up lines are filtered (`tflottery.core.quiet`, set up by `import tflottery`).
"""
from __future__ import annotations

import inspect
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Optional

from tflottery.core.errors import ConfigError, TflotteryError

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


def flag_values(args: list) -> dict:
    """{name: raw text} of the `--name=value` flags in `args` (for help that depends on a flag)."""
    out = {}
    for arg in args:
        if arg.startswith("--") and "=" in arg:
            name, _, value = arg[2:].partition("=")
            out[name.replace("-", "_")] = value
    return out


def check_duplicates(args: list) -> None:
    """A flag given twice is an error, never one of the two chosen silently."""
    seen = set()
    for arg in args[:args.index("--")] if "--" in args else args:
        if arg.startswith("--") and len(arg) > 2:
            name = arg[2:].split("=", 1)[0].replace("-", "_")
            if name in seen:
                raise ConfigError(f"--{name} is given twice: give each flag once.")
            seen.add(name)


def run_fire(component, name: str, argv: Optional[list] = None, extra_flags: Optional[dict] = None,
             version: Optional[str] = None) -> None:
    """Fire over `component` (a function, or a dict of command functions) with the guarantees above.

    `extra_flags` maps a command to a checker for the names its **flags accept. A command with a
    `help_text(args)` attribute prints that for --help (flags whose help depends on other flags).
    A user error is one line and exit 2; Ctrl-C one line and exit 130; a file-system error one
    line naming the path and the cause.
    """
    import fire

    raw = list(sys.argv[1:] if argv is None else argv)
    with one_line_errors():
        if version is not None and raw and raw[0] in ("--version", "-V"):
            print(f"{name} {version}")
            return
        args = fire_args(raw)
        function, rest = component, args
        if isinstance(component, dict):
            head = args[0] if args and not args[0].startswith("-") else None
            if head is not None and head not in component:
                raise ConfigError(f"Unknown command {head!r}: use one of {', '.join(component)}.")
            function, rest = component.get(head), args[1:]
        if function is not None and "--" in rest and "--help" in rest[rest.index("--"):] \
                and hasattr(function, "help_text"):
            print(function.help_text(rest[:rest.index("--")]))
            return
        if function is not None:
            check_duplicates(rest)
            check_flags(function, rest, (extra_flags or {}).get(function))
        fire.Fire(component, command=args, name=name)


class Stopped(KeyboardInterrupt):
    """SIGTERM (or SIGHUP), raised where the main thread is, so that it unwinds as Ctrl-C does: every lock released
    by its holder, nothing half-written kept."""


_RECEIVED: list = []  # the signals `_stop` turned into Stopped (a library may re-raise it as a plain KeyboardInterrupt)


def stop_received() -> str | None:
    """The signal that asked this command to stop, if one did: a library may have wrapped the `Stopped` raised in its
    frames into an error of its own (TensorFlow's pybind11 into a RuntimeError), which must not pass for a failure."""
    return _RECEIVED[-1] if _RECEIVED else None


def _stop(signum, frame) -> None:
    _RECEIVED.append(signal.Signals(signum).name)
    raise Stopped(_RECEIVED[-1])


@contextmanager
def stop_on_signals():
    """SIGTERM and SIGHUP end the command as Ctrl-C does (`Stopped`), in the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _RECEIVED.clear()
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def one_line_errors():
    """A user error is one line and exit 2; Ctrl-C one line and exit 130, SIGTERM 143 (locks released, nothing
    half-written kept); a file-system error one line naming the path and the cause. Anything else is a bug and
    keeps its traceback."""
    try:
        with stop_on_signals():
            yield
    except KeyboardInterrupt as stop:
        name = str(stop) if isinstance(stop, Stopped) else (_RECEIVED[-1] if _RECEIVED else None)
        if name is None:
            print("tflottery: interrupted: everything finished so far is kept; the same command resumes where it "
                  "stopped.", file=sys.stderr)
            sys.exit(130)
        print(f"tflottery: stopped by {name}: its units are released and everything finished so far is kept; the "
              "same command resumes where it stopped.", file=sys.stderr)
        sys.exit(128 + getattr(signal, name, signal.SIGTERM).value)
    except TflotteryError as error:
        print(f"tflottery: error: {error}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:  # the reader went away (`tflottery summary RUN | head`): nothing to say to it
        sys.stderr.close()
        os._exit(0)
    except OSError as error:
        if error.filename is None:
            raise
        print(f"tflottery: error: {error.filename}: {error.strerror or error} (nothing half-written is kept; "
              "fix the cause and run the command again).", file=sys.stderr)
        sys.exit(2)
