"""A channel ticket from the command line: `tflottery find --structure=channels`, `tflottery export --shrink`, and
the shrunk ticket converted to LiteRT, checked in the default interpreter, its file the size of its fewer weights."""
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def cli(*args, cwd):
    done = subprocess.run([sys.executable, "-m", "tflottery.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_channel_ticket_shrinks_on_the_command_line_and_converts(tmp_path):
    cli("find", "--model=lenet5", "--dataset=mnist", "--validation=400", "--structure=channels", "--levels=3",
        "--steps=30it", "--eval_every=15it", "--batch_size=50", "--jit_compile=false", "--verbose=false",
        "--runs_dir=runs", cwd=tmp_path)
    (run,) = (tmp_path / "runs").iterdir()
    small = tmp_path / "small"
    cli("export", str(run), "--shrink", f"--out={small}", cwd=tmp_path)
    meta = json.loads((small / "ticket.json").read_text())
    before, after = meta["shrunk"]["weights"]
    assert before == 61706 and after < 0.6 * before
    assert set(meta["shrunk"]["channels"]) == {"conv1", "conv2", "fc1", "fc2"}

    from tflottery import convert

    record = convert(small, modes=["float"])["files"]["float"]
    assert record["ok"] and record["top1_agreement"] >= 0.999 and record["max_logit_diff"] < 1e-3
    assert record["bytes"] < 4 * after + 20_000 < 0.7 * 4 * before  # float32 weights and the graph: no sparse kernel
