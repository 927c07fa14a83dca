"""benchmarks/device_check.sh --dry-run on this machine: every step of the device check at trivial sizes (a
population's exactness against one unit at a time, both speed tables, the figure script's arguments)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "device_check.sh"


def test_the_device_check_dry_run_passes_here():
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PY": sys.executable})
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "population 2 vs one at a time: identical" in done.stdout and "device_check: done" in done.stdout
    assert "lenet_300_100: ran" in done.stdout and "vit_tiny: ran" in done.stdout
