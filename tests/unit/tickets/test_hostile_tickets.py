"""Tickets are shared files: crafted or damaged ones are refused with a TicketError, never run code or hang.

Most crafted tickets are re-signed (every sha256 and ticket.json's own digest recomputed), so
only the checks on content can catch them, as they must for an adversary who knows the format.
"""
import hashlib
import io
import json
import os
import shutil
import zipfile

import numpy as np
import pytest

from helpers import export_tiny_ticket
from tflottery import convert, load_ticket, transfer
from tflottery.core.errors import TicketError
from tflottery.core.files import npz_bytes
from tflottery.tickets import read_ticket
from tflottery.tickets.format import digest_of


@pytest.fixture(scope="module")
def good(tmp_path_factory, sample_data):
    return export_tiny_ticket(tmp_path_factory.mktemp("good"), sample_data, levels=1)[0]


def resign(path, files=None):
    """Recompute every listed file's sha256 and ticket.json's digest (what a knowing adversary does)."""
    meta = json.loads((path / "ticket.json").read_text())
    if files is not None:
        meta["files"] = files
    for name in list(meta["files"]):
        file = path / name
        if file.is_file() and not file.is_symlink():
            meta["files"][name] = hashlib.sha256(file.read_bytes()).hexdigest()
    meta["digest"] = digest_of(meta)
    (path / "ticket.json").write_text(json.dumps(meta))
    return meta


def edit_meta(path, change):
    meta = json.loads((path / "ticket.json").read_text())
    change(meta)
    meta["digest"] = digest_of(meta)
    (path / "ticket.json").write_text(json.dumps(meta))


def arrays(path, name):
    with np.load(path / name) as f:
        return {k.replace("__", "/"): f[k] for k in f.files}


def write_arrays(path, name, values, sign=True):
    (path / name).write_bytes(npz_bytes(values))
    if sign:
        resign(path)


def lambda_model(path, marker):
    """model.json with a Lambda layer whose code would write `marker` if anything ran it."""
    from tflottery.core.keras_compat import keras

    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    code = eval(f"lambda t: (open({str(marker)!r}, 'w').write('ran'), t)[1]")  # no closure: serialisable
    x = keras.layers.Lambda(code, name="evil")(x)
    for name, units in (("fc1", 300), ("fc2", 100), ("output", 10)):
        x = keras.layers.Dense(units, name=name)(x)
    (path / "model.json").write_text(keras.Model(inputs, x, name="lenet_300_100").to_json())
    resign(path)


def replace_layer_class(path, class_name, module):
    config = json.loads((path / "model.json").read_text())
    layer = config["config"]["layers"][2]
    layer["class_name"], layer["module"] = class_name, module
    (path / "model.json").write_text(json.dumps(config))
    resign(path)


def huge_dense(path):
    config = json.loads((path / "model.json").read_text())
    config["config"]["layers"][2]["config"]["units"] = 10 ** 9
    (path / "model.json").write_text(json.dumps(config))
    resign(path)


def npz_declaring(shape):
    """An .npz whose array header declares `shape` over almost no data (a zip bomb's promise)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fc1__kernel.npy", header.getvalue() + b"\0" * 64)
    return buffer.getvalue()


def zip_member(path, name, member, data):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, data)
    (path / name).write_bytes(buffer.getvalue())
    resign(path)


def corrupt_crc(path):
    data = bytearray((path / "masks.npz").read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside a member's compressed data
    (path / "masks.npz").write_bytes(bytes(data))
    resign(path)


def corrupt_unsigned(path):
    data = bytearray((path / "masks.npz").read_bytes())
    data[len(data) // 2] ^= 0x01
    (path / "masks.npz").write_bytes(bytes(data))


def fifo(path):
    (path / "masks.npz").unlink()
    os.mkfifo(path / "masks.npz")


def symlink(path, target):
    (path / "rewind.npz").unlink()
    (path / "rewind.npz").symlink_to(target)


CRAFTED = {
    # ticket.json itself
    "ticket.json missing": (lambda p: (p / "ticket.json").unlink(), "ticket.json is missing"),
    "ticket.json empty": (lambda p: (p / "ticket.json").write_text(""), "is not valid JSON"),
    "ticket.json a list": (lambda p: (p / "ticket.json").write_text("[1, 2]"), "holds a list"),
    "ticket.json not UTF-8": (lambda p: (p / "ticket.json").write_bytes(b"\xff\xfe\x00{"), "is not UTF-8"),
    "ticket.json nested 100k deep": (lambda p: (p / "ticket.json").write_text("[" * 100_000 + "]" * 100_000),
                                     "is not valid JSON"),
    "ticket.json too large": (lambda p: (p / "ticket.json").write_text(" " * (17 << 20) + "{}"), "larger than"),
    "ticket.json edited, not re-signed": (lambda p: (p / "ticket.json").write_text(
        (p / "ticket.json").read_text().replace('"level": 1', '"level": 5')), "does not match its own digest"),
    "format_version 99": (lambda p: edit_meta(p, lambda m: m.update(format_version=99)), "newer than this"),
    "format_version 1 (SavedModel only)": (lambda p: edit_meta(p, lambda m: m.update(format_version=1)),
                                           "no longer loads"),
    "not our format": (lambda p: edit_meta(p, lambda m: m.update(format="other")), "not a tflottery ticket"),
    "level is a path": (lambda p: edit_meta(p, lambda m: m.update(level="../../outside")), "'level' is missing or not"),
    "level negative": (lambda p: edit_meta(p, lambda m: m.update(level=-3)), "must be >= 0"),
    "remaining above 1": (lambda p: edit_meta(p, lambda m: m["remaining"].update(total=2.0)), "is not a fraction"),
    # the file list
    "files: absolute path": (lambda p: resign(p, {**json.loads((p / "ticket.json").read_text())["files"],
                                                  "/etc/passwd": "0" * 64}), "not a plain path inside"),
    "files: parent path": (lambda p: resign(p, {**json.loads((p / "ticket.json").read_text())["files"],
                                                "../outside.npz": "0" * 64}), "not a plain path inside"),
    "files: a device": (lambda p: resign(p, {**json.loads((p / "ticket.json").read_text())["files"],
                                             "/dev/zero": "0" * 64}), "not a plain path inside"),
    "files: model.json unlisted": (lambda p: resign(p, {k: v for k, v in json.loads(
        (p / "ticket.json").read_text())["files"].items() if k != "model.json"}), "does not list"),
    "files: 2,000 entries": (lambda p: resign(p, {**json.loads((p / "ticket.json").read_text())["files"],
                                                  **{f"x{i}": "0" * 64 for i in range(2000)}}), "at most 1000"),
    "a listed file replaced by a link to /dev/zero": (lambda p: symlink(p, "/dev/zero"), "symbolic link"),
    "a listed file replaced by a link outside": (lambda p: symlink(p, "/etc/hostname"), "symbolic link"),
    "a pipe where masks.npz was": (fifo, "not a regular file"),
    "an extra file": (lambda p: (p / "extra.py").write_text("import os"), "not in ticket.json"),
    "masks.npz altered, not re-signed": (corrupt_unsigned, "does not match its sha256"),
    # the arrays
    "masks.npz truncated": (lambda p: ((p / "masks.npz").write_bytes((p / "masks.npz").read_bytes()[:200]),
                                       resign(p)), "not a readable .npz"),
    "masks.npz fails its CRC": (corrupt_crc, "not a readable .npz"),
    "masks.npz a bare .npy": (lambda p: (np.save(p / "bare.npy", np.ones(3, bool)),
                                         (p / "bare.npy").rename(p / "masks.npz"), resign(p)), "not a readable .npz"),
    "masks.npz holds pickles": (lambda p: (np.savez(p / "m.npz", fc1__kernel=np.array([{"a": 1}], dtype=object)),
                                           (p / "m.npz").rename(p / "masks.npz"), resign(p)), "pickled objects"),
    "masks.npz member escapes": (lambda p: zip_member(p, "masks.npz", "../fc1__kernel.npy", b"x"),
                                 "is not an array of the ticket"),
    "masks.npz declares 10^10 values": (lambda p: ((p / "masks.npz").write_bytes(npz_declaring((100000, 100000))),
                                                   resign(p)), "declares more than"),
    "a mask missing": (lambda p: write_arrays(p, "masks.npz", {k: v for k, v in arrays(p, "masks.npz").items()
                                                               if k != "fc2/kernel"}), "has masks for"),
    "masks all ones": (lambda p: write_arrays(p, "masks.npz", {k: np.ones_like(v) for k, v in
                                                               arrays(p, "masks.npz").items()}), "masks and description disagree"),
    "a mask for an unknown layer": (lambda p: (write_arrays(p, "masks.npz", {**arrays(p, "masks.npz"),
                                                                             "ghost/kernel": np.ones((2, 2), bool)}, False),
                                               edit_meta(p, lambda m: m["pruned"].append("ghost/kernel")), resign(p)),
                                    "not kernels of the model"),
    "mask values 0.5": (lambda p: write_arrays(p, "masks.npz", {k: v * 0.5 for k, v in
                                                                arrays(p, "masks.npz").items()}), "not bool"),
    "mask of the wrong shape": (lambda p: write_arrays(p, "masks.npz", {**arrays(p, "masks.npz"),
                                                                        "fc2/kernel": np.ones((300, 99), bool)}),
                                r"has shape \(300, 99\)"),
    "rewind weights NaN": (lambda p: write_arrays(p, "rewind.npz", {k: np.full_like(v, np.nan) for k, v in
                                                                    arrays(p, "rewind.npz").items()}), "NaN or infinite"),
    "trained weights where pruned": (lambda p: write_arrays(p, "weights.npz", {k: v + 1.0 for k, v in
                                                                               arrays(p, "weights.npz").items()}),
                                     "non-zero weights where its mask prunes"),
    "weights of another shape": (lambda p: write_arrays(p, "weights.npz", {**arrays(p, "weights.npz"),
                                                                           "fc1/bias": np.zeros(7, np.float32)}),
                                 "the model needs floats of shape"),
    # the architecture
    "a layer of an unknown class": (lambda p: replace_layer_class(p, "EvilLayer", "evil.module"),
                                    "not a built-in Keras class"),
    "a built-in name from another module": (lambda p: replace_layer_class(p, "Dense", "os"),
                                            "not a built-in Keras class"),
    "a Dense of 10^9 units": (huge_dense, "more weights than weights.npz holds"),
    "model.json not a model": (lambda p: ((p / "model.json").write_text('{"class_name": "Dense"}'), resign(p)),
                               "not a Keras Functional or Sequential"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(CRAFTED))
def test_a_crafted_ticket_is_refused(good, tmp_path, name):
    craft, message = CRAFTED[name]
    bad = shutil.copytree(good, tmp_path / "bad")
    craft(bad)
    with pytest.raises(TicketError, match=message):
        read_ticket(bad)


def test_there_are_at_least_thirty():
    assert len(CRAFTED) >= 30


@pytest.mark.timeout(120)
def test_a_lambda_layer_never_runs_in_load_transfer_or_convert(good, tmp_path):
    bad = shutil.copytree(good, tmp_path / "bad")
    marker = tmp_path / "pwned"
    lambda_model(bad, marker)
    marker.unlink()  # building the crafted model here ran the code once; from now on nothing may
    for attempt in (lambda: load_ticket(bad), lambda: transfer(bad, {"dataset": "mnist"}, runs_dir=tmp_path / "r"),
                    lambda: convert(bad, modes=["float"])):
        with pytest.raises(TicketError, match="carries code .* trust_code=True"):
            attempt()
    assert not marker.exists() and not (tmp_path / "r").exists()


def test_a_directory_link_as_ticket_is_refused(good, tmp_path):
    (tmp_path / "link").symlink_to(good, target_is_directory=True)
    with pytest.raises(TicketError, match="is not a ticket"):
        read_ticket(tmp_path / "link")


def test_what_ticket_json_says_never_chooses_a_path(good, tmp_path):
    crafted = shutil.copytree(good, tmp_path / "crafted")
    edit_meta(crafted, lambda m: m.update(run="../../../../tmp/escaped", branch="../../escaped"))
    result = transfer(crafted, {"dataset": "mnist", "labels": [0, 1], "validation": 100},
                      {"steps": "5it", "eval_every": "5it", "verbose": False}, reinit=False,
                      runs_dir=tmp_path / "runs")
    assert result.path.parent == tmp_path / "runs" and result.path.name.startswith("ticket-")
    written = {p for p in tmp_path.rglob("*")}
    assert all(p.is_relative_to(tmp_path / "runs") or p.is_relative_to(crafted) for p in written)
    assert not (tmp_path.parent / "escaped").exists()
