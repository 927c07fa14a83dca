"""Tickets are shared files: crafted or damaged ones are refused with a TicketError, never run code or hang.

Most crafted tickets are re-signed (every sha256 and ticket.json's own digest recomputed), so
only the checks on content can catch them, as they must for an adversary who knows the format.
"""
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import export_tiny_ticket, lambda_model, resign
from tflottery import convert, load_ticket, transfer
from tflottery.core.errors import TicketError
from tflottery.core.files import npz_bytes
from tflottery.tickets import read_ticket
from tflottery.tickets.format import digest_of


@pytest.fixture(scope="module")
def good(tmp_path_factory, tiny_run):
    return export_tiny_ticket(tmp_path_factory.mktemp("good"), tiny_run, 1)[0]


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


def npz_declaring(shape, descr="|b1"):
    """An .npz whose array header declares `shape` over almost no data (a zip bomb's promise)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
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


def nested(path, folder, depth):
    """`depth` folders inside each other, made one relative step at a time (the path outgrows PATH_MAX)."""
    (path / folder).mkdir(exist_ok=True)
    fd = os.open(path / folder, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)


def remove_deep(path):
    """Remove a tree deeper than Python's recursion allows shutil.rmtree to go (the nested-folder cases)."""
    import subprocess

    subprocess.run(["rm", "-rf", str(path)], check=True)


def raw_json(path, text_change):
    """ticket.json edited as text (for what json.dumps cannot write), then its digest recomputed over what the
    reader would parse, so that only the strict parser can refuse it."""
    text = text_change((path / "ticket.json").read_text())
    (path / "ticket.json").write_text(text)


def dtype_weights(path, dtype):
    write_arrays(path, "weights.npz", {k: v.astype(dtype) for k, v in arrays(path, "weights.npz").items()})


def mask_bytes(path, value):
    """A mask stored with bool's dtype but a byte other than 0 or 1."""
    masks = arrays(path, "masks.npz")
    raw = masks["fc2/kernel"].view(np.uint8).copy()
    raw.flat[0] = value
    masks["fc2/kernel"] = raw.view(np.bool_)
    write_arrays(path, "masks.npz", masks)


def layer_config(path, change):
    config = json.loads((path / "model.json").read_text())
    change(config["config"]["layers"])
    (path / "model.json").write_text(json.dumps(config))
    resign(path)


def insert_layer(path, layer, before_index=2):
    """Insert a layer (Keras config) into the Functional chain between layers before_index-1 and before_index."""
    config = json.loads((path / "model.json").read_text())
    layers = config["config"]["layers"]
    previous, following = layers[before_index - 1], layers[before_index]
    layer["inbound_nodes"] = [[[previous["name"], 0, 0, {}]]]
    following["inbound_nodes"] = [[[layer["name"], 0, 0, {}]]]
    layers.insert(before_index, layer)
    (path / "model.json").write_text(json.dumps(config))
    resign(path)


def sabotage_normalization(path):
    """Normalization(variance=-1) before fc1: finite weights, NaN outputs."""
    insert_layer(path, {"class_name": "Normalization", "name": "norm", "config": {
        "name": "norm", "trainable": True, "dtype": "float32", "axis": [-1], "mean": 0.0, "variance": -1.0,
        "invert": False}})


def hard_link(path, name, target):
    (path / name).unlink()
    os.link(target, path / name)


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
    "weights: of all altered": (lambda p: edit_meta(p, lambda m: m["weights"].update(remaining_of_all=0.5)),
                                "masks and description disagree"),
    "weights: kept as text": (lambda p: edit_meta(p, lambda m: m["weights"].update(kept="all")),
                              "masks and description disagree"),
    "weights: more dense than the model": (lambda p: edit_meta(p, lambda m: m["weights"].update(dense=10 ** 12)),
                                           "is not a count of the model's"),
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
                                    "not prunable weights of the model"),
    "mask values 0.5": (lambda p: write_arrays(p, "masks.npz", {k: v * 0.5 for k, v in
                                                                arrays(p, "masks.npz").items()}), "holds only [|]b1"),
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
    # round two: the read side
    "folders 1,200 deep in tflite/": (lambda p: nested(p, "tflite", 1200), "nests folders more than 8 deep"),
    "folders 1,200 deep in saved_model/": (lambda p: nested(p, "saved_model", 1200), "nests folders more than 8 deep"),
    "a 5,000-digit integer": (lambda p: raw_json(p, lambda t: t.replace('"level": 1', '"level": 1' + "0" * 5000)),
                              "integer of 5001 digits"),
    "level 1e300": (lambda p: edit_meta(p, lambda m: m.update(level=1e300)), "'level' is missing or not a int"),
    "level 10^6": (lambda p: edit_meta(p, lambda m: m.update(level=10 ** 6)), "level=1000000 is past what a ticket"),
    "an npz declaring 1.9e9 float32": (lambda p: ((p / "weights.npz").write_bytes(
        npz_declaring((1_900_000_000,), "<f4")), resign(p)), "declares more than"),
    "an npz declaring 1.9e9 float64": (lambda p: ((p / "weights.npz").write_bytes(
        npz_declaring((1_900_000_000,), "<f8")), resign(p)), "holds only <f4"),
    "an npz of complex256": (lambda p: ((p / "weights.npz").write_bytes(npz_declaring((10,), "<c32")), resign(p)),
                             "holds only <f4"),
    "an npz whose member holds more than it declares": (lambda p: zip_member(
        p, "masks.npz", "fc1__kernel.npy", _npy_header((2,), "|b1") + b"\x01" * 10_000), "declares 2 values but holds"),
    "UpSampling by 10^4": (lambda p: insert_layer(p, {"class_name": "Reshape", "name": "r", "config": {
        "name": "r", "trainable": True, "dtype": "float32", "target_shape": [28, 28, 1]}}) or layer_config(
        p, lambda layers: layers.insert(3, {"class_name": "UpSampling2D", "name": "up", "inbound_nodes": [
            [["r", 0, 0, {}]]], "config": {"name": "up", "trainable": True, "dtype": "float32",
                                           "size": [10000, 10000], "data_format": "channels_last",
                                           "interpolation": "nearest"}}) or layers[4].update(
            inbound_nodes=[[["up", 0, 0, {}]]])), "values per example"),
    "ZeroPadding by 10^5": (lambda p: insert_layer(p, {"class_name": "Reshape", "name": "r", "config": {
        "name": "r", "trainable": True, "dtype": "float32", "target_shape": [28, 28, 1]}}) or layer_config(
        p, lambda layers: layers.insert(3, {"class_name": "ZeroPadding2D", "name": "pad", "inbound_nodes": [
            [["r", 0, 0, {}]]], "config": {"name": "pad", "trainable": True, "dtype": "float32",
                                           "padding": [[100000, 100000], [100000, 100000]],
                                           "data_format": "channels_last"}}) or layers[4].update(
            inbound_nodes=[[["pad", 0, 0, {}]]])), "values per example"),
    "an activity regulariser": (lambda p: layer_config(p, lambda layers: layers[2]["config"].update(
        activity_regularizer={"class_name": "L2", "config": {"l2": 0.01}})), "activity regulariser"),
    # round two: accepted by 0.2, refused now
    "masks.npz a hard link to a file outside": (lambda p: (hard_link(p, "masks.npz", p.parent / "victim.npz"),
                                                           resign(p)), "hard link"),
    "a symbolic link inside tflite/": (lambda p: ((p / "tflite").mkdir(), (p / "tflite" / "float.tflite").symlink_to(
        p.parent / "victim.npz")), "symbolic link"),
    "a hard link inside tflite/": (lambda p: ((p / "tflite").mkdir(), os.link(p.parent / "victim.npz",
                                                                              p / "tflite" / "float.tflite")),
                                   "hard link"),
    "a pipe inside tflite/": (lambda p: ((p / "tflite").mkdir(), os.mkfifo(p / "tflite" / "float.tflite")),
                              "not a regular file"),
    "tflite/ a link to another folder": (lambda p: (p / "tflite").symlink_to(p.parent, target_is_directory=True),
                                         "symbolic link"),
    "a folder where weights.npz is listed": (lambda p: ((p / "weights.npz").unlink(), (p / "weights.npz").mkdir()),
                                             "is a folder where ticket.json lists a file"),
    "a 4 GB sparse listed file": (lambda p: os.truncate(p / "weights.npz", 4 * 10 ** 9),
                                  "at most 1024 MiB"),
    "a duplicate key (level)": (lambda p: raw_json(p, lambda t: t.replace('"level": 1,', '"level": 1, "level": 2,')),
                                r"repeats the key\(s\) .*level"),
    "a duplicate key (pruned)": (lambda p: raw_json(p, lambda t: t.replace('"pruned": [', '"pruned": [], "pruned": [')),
                                 r"repeats the key\(s\) .*pruned"),
    "Infinity in metrics": (lambda p: raw_json(p, lambda t: t.replace('"metrics": {', '"metrics": {"x": Infinity, ')),
                            "holds Infinity, which is no number"),
    "an ANSI escape in a printed field": (lambda p: edit_meta(p, lambda m: m["model"].update(name="\x1b[31mred")),
                                          "control characters"),
    "a lone surrogate": (lambda p: raw_json(p, lambda t: t.replace('"branch": "ticket"', '"branch": "\\udc80"')),
                         "lone surrogates"),
    "data.dataset with ../": (lambda p: edit_meta(p, lambda m: m["data"].update(dataset="../../etc")),
                              "data.dataset='../../etc' cannot name a file or folder"),
    "branch with ../": (lambda p: edit_meta(p, lambda m: m.update(branch="../../replicate_0")),
                        "branch='../../replicate_0' cannot name a file or folder"),
    "masks as uint8": (lambda p: write_arrays(p, "masks.npz", {k: v.astype(np.uint8) for k, v in
                                                               arrays(p, "masks.npz").items()}), "holds only [|]b1"),
    "a mask of bool bytes 2": (lambda p: mask_bytes(p, 2), "bytes other than 0 and 1"),
    "weights float64": (lambda p: dtype_weights(p, np.float64), "holds only <f4"),
    "weights float16": (lambda p: dtype_weights(p, np.float16), "holds only <f4"),
    "weights longdouble": (lambda p: dtype_weights(p, np.longdouble), "holds only <f4"),
    "weights big-endian": (lambda p: dtype_weights(p, ">f4"), "holds only <f4"),
    "Normalization(variance=-1): NaN outputs": (sabotage_normalization, "computes NaN or infinite outputs"),
    # round three: what only training would compute
    "GaussianNoise(1e30)": (lambda p: insert_layer(p, {"class_name": "GaussianNoise", "name": "noise", "config": {
        "name": "noise", "trainable": True, "dtype": "float32", "stddev": 1e30}}),
                            r"'noise' \(GaussianNoise\) has stddev=1e\+30, outside \[0, 1000\]"),
    "Dropout(rate=1.5)": (lambda p: insert_layer(p, {"class_name": "Dropout", "name": "drop", "config": {
        "name": "drop", "trainable": True, "dtype": "float32", "rate": 1.5}}), r"has rate=1.5, outside \[0, 1\)"),
}


def _npy_header(shape, descr):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(CRAFTED))
def test_a_crafted_ticket_is_refused(good, tmp_path, name):
    craft, message = CRAFTED[name]
    (tmp_path / "victim.npz").write_bytes(b"the victim's own file")
    bad = shutil.copytree(good, tmp_path / "bad")
    try:
        craft(bad)
        with pytest.raises(TicketError, match=message):
            read_ticket(bad)
        assert (tmp_path / "victim.npz").read_bytes() == b"the victim's own file"
    finally:
        remove_deep(bad)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_crafted_ticket_is_refused_by_load_transfer_and_convert_in_one_line(good, tmp_path):
    """The three entry points a shared ticket meets, each refusing with one TicketError, writing nothing."""
    for name, (craft, message) in CRAFTED.items():
        where = tmp_path / f"case{abs(hash(name))}"
        where.mkdir()
        (where / "victim.npz").write_bytes(b"the victim's own file")
        bad = shutil.copytree(good, where / "bad", symlinks=True)
        craft(bad)
        before = _listing(where)
        for attempt, expected in ((lambda: load_ticket(bad), message),
                                  (lambda: transfer(bad, {"labels": [0, 1]}, runs_dir=where / "runs"),
                                   f"{message}|is neither a run directory .* nor a ticket"),
                                  (lambda: convert(bad, modes=["float"]), message)):
            with pytest.raises(TicketError, match=expected):
                attempt()
        after = _listing(where)
        assert after == before, name  # nothing written: no run, no tflite file
        assert (where / "victim.npz").read_bytes() == b"the victim's own file", name
        remove_deep(where)


def _listing(where):
    import subprocess

    found = subprocess.run(["find", str(where), "-maxdepth", "6"], capture_output=True, text=True).stdout
    return sorted(found.splitlines())


def test_there_are_at_least_seventy():
    assert len(CRAFTED) >= 70


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
    edit_meta(crafted, lambda m: m.update(run="../../../../tmp/escaped"))  # recorded, never a path
    result = transfer(crafted, {"dataset": "mnist", "labels": [0, 1], "validation": 100},
                      {"steps": "5it", "eval_every": "5it", "verbose": False}, reinit=False,
                      runs_dir=tmp_path / "runs")
    assert result.path.parent == tmp_path / "runs" and result.path.name.startswith("ticket-")
    written = {p for p in tmp_path.rglob("*")}
    assert all(p.is_relative_to(tmp_path / "runs") or p.is_relative_to(crafted) for p in written)
    assert not (tmp_path.parent / "escaped").exists()


def _vanishing_once(monkeypatch, replaced: bool):
    """The first entry looked at is gone by then, as when an export swaps the ticket and deletes the old one."""
    from tflottery.tickets import read

    entry, calls = read._Root._entry, []

    def gone_once(self, *args):
        calls.append(1)
        if len(calls) == 1:
            raise FileNotFoundError(2, "No such file or directory", "fingerprint.pb")
        return entry(self, *args)

    monkeypatch.setattr(read._Root, "_entry", gone_once)
    monkeypatch.setattr(read._Root, "_replaced", lambda self: replaced)
    return calls


def test_a_ticket_swapped_while_its_files_are_listed_is_read_again(good, monkeypatch):
    calls = _vanishing_once(monkeypatch, replaced=True)
    assert read_ticket(good).digest == json.loads((good / "ticket.json").read_text())["digest"]
    assert len(calls) > 1  # listed again after the vanished entry


def test_a_file_deleted_while_the_ticket_is_listed_is_refused_in_one_line(good, monkeypatch):
    _vanishing_once(monkeypatch, replaced=False)
    with pytest.raises(TicketError, match="disappeared while the ticket was read.*Re-export"):
        read_ticket(good)


def test_the_output_check_runs_a_network_of_two_inputs():
    """0.3 probed `model.input_shape[1:]` and crashed on a list; a two-input network (no new weights) loads."""
    from tflottery.core.keras_compat import keras
    from tflottery.models.weights import get_weights
    from tflottery.tickets.read import _check_outputs

    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    model = keras.Model([a, b], keras.layers.Dense(3, name="output")(keras.layers.Add()([a, b])))
    _check_outputs(model, get_weights(model), Path("ticket"))
    weights = get_weights(model)
    weights["output/kernel"] = weights["output/kernel"] * np.inf
    with pytest.raises(TicketError, match="NaN or infinite outputs"):
        _check_outputs(model, weights, Path("ticket"))
