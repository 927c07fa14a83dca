"""TensorFlow's C++ start-up lines are filtered from stderr by their shape, and only when the user did not ask for them.

Which lines a machine prints depends on its CPU and drivers (some print no port.cc line), so
the test writes lines of each shape itself instead of depending on what TensorFlow prints here.
"""
import os
import subprocess
import sys

from tflottery.core.quiet import is_noise

LINES = ["WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
         "I0000 00:00:1796123836.060503    6135 port.cc:153] oneDNN custom operations are on.",
         "I0000 00:00:1796123836.060868    6135 cudart_stub.cc:31] Could not find cuda drivers on your machine.",
         "E0000 00:00:1796123842.178985    6135 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error"]
KEPT = ["tflottery: error: something the user must read", "E0000 00:00:1796123842.178985 6135 ops.cc:52] a real error",
        "Traceback (most recent call last):"]


def test_the_filter_drops_start_up_lines_and_keeps_everything_else():
    assert all(is_noise(line) for line in LINES)
    assert not any(is_noise(line) for line in KEPT)


def _child(env_level):
    code = ("import sys, tflottery\n" + "".join(f"print({line!r}, file=sys.stderr)\n" for line in LINES + KEPT))
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFLOTTERY_QUIET")}
    if env_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = env_level
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env).stderr


def test_import_tflottery_quiets_python_users_as_the_cli_does_and_the_users_setting_wins():
    quiet = _child(None).splitlines()
    assert quiet == KEPT  # in order, nothing lost, nothing of TensorFlow's start-up
    loud = _child("0").splitlines()
    assert loud == LINES + KEPT  # TF_CPP_MIN_LOG_LEVEL set by the user: every line
