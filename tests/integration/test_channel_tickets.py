"""A channel ticket from the command line: `tflottery find --structure=channels`, `tflottery export --shrink`, and
the shrunk ticket converted to LiteRT, every file checked in the default interpreter and smaller than the full
network's."""
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
    full, small = tmp_path / "full", tmp_path / "small"
    cli("export", str(run), f"--out={full}", cwd=tmp_path)
    cli("export", str(run), "--shrink", f"--out={small}", cwd=tmp_path)
    meta = json.loads((small / "ticket.json").read_text())
    before, after = meta["shrunk"]["weights"]
    assert before == 61706 and after < 0.6 * before
    assert set(meta["shrunk"]["channels"]) == {"conv1", "conv2", "fc1", "fc2"}

    from tflottery import convert

    sizes = {}
    for name in (full, small):
        report = convert(name, modes=["float"])
        record = report["files"]["float"]
        assert record["ok"] and record["top1_agreement"] >= 0.999 and record["max_logit_diff"] < 1e-3
        sizes[name] = record["bytes"]
    assert sizes[small] < 0.7 * sizes[full]  # fewer channels: a smaller file with no sparse kernel at all
