"""What a long command prints: a start banner, one line per trained branch, and an ETA for the whole command."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Optional


def progress_line(m: dict, levels: Optional[int] = None, eta_s: Optional[float] = None, replicate: Optional[int] = None,
                  of_all: Optional[float] = None) -> str:
    """One line per trained level and branch: level, weights remaining (of the prunable ones, and `of_all`: of
    every trainable weight), accuracy, time, ETA."""
    level = f"{m['level']:>2}" + (f"/{levels}" if levels is not None else "")
    where = f"r{replicate} " if replicate is not None else ""
    eta = f"  ETA {eta_s / 60:5.1f} min" if eta_s is not None else ""
    everything = f" ({100 * of_all:.2f}% of all)" if of_all is not None else ""
    return (f"[tflottery] {where}level {level} {m['branch']:<12} {100 * m['remaining']:6.2f}% weights remaining"
            f"{everything}  "
            f"test acc {100 * m['final_test_accuracy']:6.2f}% (early stop {100 * m['early_stop_test_accuracy']:6.2f}% "
            f"@ {m['early_stop_step']}it)  {m['wall_time_s']:6.1f}s{eta}")


class Progress:
    """Counts the jobs (one level of one branch) a command will train, and estimates the time left.

    The estimate weighs each remaining job by its number of training steps at the seconds per
    step measured so far in this command, so a long first level does not mislead it.
    """

    def __init__(self, verbose: bool = True):
        self.verbose, self.steps_left, self.steps_done, self.seconds = verbose, 0, 0, 0.0
        self.started = time.perf_counter()
        self.expected: list = []  # a command's later phases, as estimated before they start

    def expect(self, steps: int) -> None:
        """A later phase of this command (a find, a transfer) will train about `steps` steps."""
        self.expected.append(steps)
        self.steps_left += steps

    def begin(self, steps: int) -> None:
        """A phase starts and knows its exact pending steps: they replace its estimate."""
        self.steps_left += steps - (self.expected.pop(0) if self.expected else 0)

    def finished(self, steps: int, seconds: float) -> Optional[float]:
        self.steps_left -= steps
        self.steps_done += steps
        self.seconds += seconds
        return self.seconds / self.steps_done * max(0, self.steps_left) if self.steps_done else None

    def say(self, text: str) -> None:
        if self.verbose:
            print(f"[tflottery] {text}", flush=True)


_COMMAND: Optional[Progress] = None


@contextmanager
def command(verbose: bool = True):
    """One Progress for a whole command (a recipe): its finds and transfers share it, so the ETA
    covers the command, not only the phase that is training."""
    global _COMMAND
    previous, _COMMAND = _COMMAND, Progress(verbose)
    try:
        yield _COMMAND
    finally:
        _COMMAND = previous


def current(verbose: bool = True) -> Progress:
    return _COMMAND if _COMMAND is not None else Progress(verbose)
