"""TensorFlow's C++ start-up lines filtered out of stderr (absl's pre-init notice, oneDNN and CUDA probes).

absl prints them before TF_CPP_MIN_LOG_LEVEL takes effect, so setting the variable is not
enough: the process's stderr (fd 2, children included) goes through a filter thread that drops
exactly these lines and passes everything else on at once. Which lines a machine prints depends
on its CPU and drivers; the filter matches their shape, not a list. A user who set
TF_CPP_MIN_LOG_LEVEL themselves sees everything: their setting wins.
"""
from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.]+:\d+\] .*"
    r"|E\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.]+:\d+\] .*(cuInit|CUDA|cuda|cuDNN|cuFFT|cuBLAS|TensorRT).*)$")


def quiet_tensorflow_startup() -> None:
    """Filter TensorFlow's C++ log lines out of this process's stderr (fd 2), children included."""
    if getattr(quiet_tensorflow_startup, "active", False):
        return
    quiet_tensorflow_startup.active = True
    read_end, write_end = os.pipe()
    original = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not is_noise(line.decode(errors="replace")):
                    os.write(original, line)

    thread = threading.Thread(target=pump, name="tflottery-stderr", daemon=True)
    thread.start()

    def restore():
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end: the pump sees the end and stops
        thread.join(timeout=5)

    atexit.register(restore)


def is_noise(line: str) -> bool:
    """Whether `line` is one of TensorFlow's C++ start-up lines the filter drops."""
    return bool(NOISE.match(line.rstrip("\r\n")))
