"""A run proves its own integrity: every unit commits with a manifest of its files' sizes and sha256, so a
missing, truncated or altered file, truncated JSON or a planted link is found by `status`, `verify`, `summary`
and `export` (one line each, naming the file), and `find` retrains just the damaged units into the files of
the undamaged run. The commands run as users run them, in processes of their own."""
import json
import shutil
import subprocess
import sys

import pytest

from helpers import assert_same_run

pytestmark = pytest.mark.slow
FLAGS = ["--dataset=mnist", "--validation=400", "--levels=2", '--branches=["reinit"]', "--replicates=2",
         "--population=1", "--steps=40it", "--eval_every=20it", "--batch_size=50", "--jit_compile=false",
         "--steps_per_execution=5", "--verbose=false"]
DAMAGE = {"r1-level_1-reinit": ("replicate_1/level_1/reinit/final.npz", None),  # missing
          "r0-level_1-ticket": ("replicate_0/level_1/ticket/masks.npz", 100),  # truncated
          "r0-level_2-reinit": ("replicate_0/level_2/reinit/metrics.json", 40),  # truncated JSON
          "r1-level_2-ticket": ("replicate_1/level_2/ticket/start.npz", "flip")}  # altered, same size


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tflottery.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900)


def one_line_error(done, *named) -> str:
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("tflottery")]
    assert len(lines) == 1 and all(n in lines[0] for n in named), done.stderr[-3000:]
    return lines[0]


def damage(run):
    for file, how in DAMAGE.values():
        path = run / file
        if how is None:
            path.unlink()
        elif how == "flip":
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 1
            path.write_bytes(bytes(data))
        else:
            path.write_bytes(path.read_bytes()[:how])


def test_damaged_units_are_named_everywhere_and_find_retrains_just_them(tmp_path):
    runs = tmp_path / "runs"
    assert cli("find", *FLAGS, f"--runs_dir={runs}", cwd=tmp_path).returncode == 0
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    pristine = tmp_path / "pristine" / run.name
    shutil.copytree(run, pristine)
    damage(run)

    status = cli("status", str(run))
    report = json.loads(status.stdout.splitlines()[-1])
    assert report["damaged"] == len(DAMAGE) and not report["finished"], status.stdout
    assert {u["unit"] for u in report["damaged_units"]} == set(DAMAGE)
    for unit, (file, _) in DAMAGE.items():
        assert any(line.startswith(f"  damaged {unit}: ") and file in line for line in status.stdout.splitlines())

    verify = cli("verify", str(run))
    one_line_error(verify, "4 damaged unit(s)")
    assert sorted(line.split(":")[0] for line in verify.stdout.splitlines() if line.startswith("damaged")) == sorted(
        f"damaged {unit}" for unit in DAMAGE)
    one_line_error(cli("summary", str(run)), "is damaged; `tflottery find`")
    one_line_error(cli("export", str(run), "--level=1", f"--out={tmp_path / 'ticket'}"), "masks.npz",
                   "replicate 0, level 1, ticket is damaged")
    assert not (tmp_path / "ticket").exists()

    found = cli("find", *FLAGS, f"--runs_dir={runs}", cwd=tmp_path)
    assert found.returncode == 0, found.stderr[-3000:]
    assert sum("is damaged and trains again" in line for line in found.stderr.splitlines()) == len(DAMAGE)
    assert_same_run(run, pristine)
    assert cli("verify", str(run)).returncode == 0


def test_truncated_json_and_a_linked_replicate_are_one_line_naming_them(tmp_path):
    runs = tmp_path / "runs"
    small = [f for f in FLAGS if not f.startswith(("--replicates", "--levels"))] + ["--replicates=1", "--levels=1"]
    assert cli("find", *small, f"--runs_dir={runs}", cwd=tmp_path).returncode == 0
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    config = (run / "config.json").read_bytes()
    (run / "config.json").write_bytes(config[:40])
    for command in ("status", "summary"):
        one_line_error(cli(command, str(run)), "config.json is not valid JSON")
    (run / "config.json").write_bytes(config)
    shutil.move(run / "replicate_0", tmp_path / "elsewhere")
    (run / "replicate_0").symlink_to(tmp_path / "elsewhere")
    for command in ("status", "verify", "summary"):
        one_line_error(cli(command, str(run)), "replicate_0 is a symbolic link")
