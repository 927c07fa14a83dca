"""Winning tickets on disk: export one level of a run, load and verify it anywhere.

A ticket directory holds
    saved_model/   the plain (wrapper-stripped) model at its trained sparse weights, with a
                   serving signature: `tf.saved_model.load` and `tf_keras.models.load_model`
                   read it without tflottery;
    masks.npz      one boolean array per pruned weight, keyed `<layer>/kernel`;
    rewind.npz     the rewind-point weights (the ticket's initialisation, masked), same keys;
    ticket.json    format version, model, data and its source, preprocessing, pruning config,
                   level, rewind step, seed, sparsity, metrics, library versions, and the
                   sha256 of every other file. It is written last.
Exporting to an existing place replaces the old ticket whole (atomic rename).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery.config import FORMAT_VERSION, RunConfig, TicketError
from tflottery.keras_compat import keras, require_tf_keras
from tflottery.pruning import masks as mask_lib
from tflottery.pruning import wrap as wrap_lib
from tflottery.runs import MAIN, RunDir, atomic_directory, read_json, read_npz, write_json, write_npz

DEFAULT_DIR = Path("saved_tickets")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict:
    names = ["tensorflow", "tf-keras", "tensorflow-model-optimization", "tflottery"]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[n] = None
    return out


def export_ticket(run: "str | Path | RunDir", level: Optional[int] = None, out: "str | Path | None" = None,
                  branch: str = MAIN) -> Path:
    """Write the ticket of `level` (default: the last finished level) of a run directory.

    Returns the ticket directory (default `saved_tickets/<run name>-level_<L>`).
    """
    run = run if isinstance(run, RunDir) else RunDir(run)
    if not (run.path / "config.json").exists():
        raise TicketError(f"{run.path} is not a run directory (no config.json): pass the folder `tflottery find` made.")
    finished = run.levels()
    level = finished[-1] if level is None and finished else level
    if level is None or not run.is_done(level, branch):
        raise TicketError(f"Level {level} ({branch}) of {run.path} is not finished; finished levels: {finished}.")
    record = run.load_level(level, branch)
    model = keras.models.model_from_json((run.path / "model.json").read_text())
    wrapped = wrap_lib.wrap(model, [k.split("/")[0] for k in record.masks])
    wrap_lib.set_weights(wrapped, record.final)
    wrap_lib.set_masks(wrapped, record.masks)
    plain = wrap_lib.strip(wrapped)
    config = read_json(run.path / "config.json")
    data_info = read_json(run.path / "data.json")
    out = Path(out) if out else DEFAULT_DIR / f"{run.path.name}-level_{level}" + ("" if branch == MAIN else f"-{branch}")
    with atomic_directory(out) as tmp:
        _save_quietly(plain, tmp / "saved_model")
        write_npz(tmp / "masks.npz", record.masks)
        write_npz(tmp / "rewind.npz", {k: v * record.masks[k] if k in record.masks else v
                                       for k, v in record.start.items()})
        files = {str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        sparsity = mask_lib.remaining(record.masks)
        write_json(tmp / "ticket.json", {
            "format_version": FORMAT_VERSION, "model": {"name": model.name, "config": config["model"]},
            "data": data_info, "class_names": data_info.get("class_names"),
            "preprocessing": data_info.get("preprocessing"), "pruning": config["pruning"],
            "training": config["training"], "level": level, "branch": branch,
            "rewind_step": record.metrics.get("rewind_step"), "seed": config["seed"],
            "replicate": config["replicate"], "remaining": sparsity,
            "metrics": {k: v for k, v in record.metrics.items() if k != "history"},
            "run": run.path.name, "versions": _versions(), "files": files})
    return out


def _save_quietly(model: keras.Model, path: Path) -> None:
    """SavedModel export; tf_keras warns about compile metrics of an uncompiled model, which is noise here."""
    import tensorflow as tf

    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")
    try:
        model.save(path, save_format="tf", include_optimizer=False)
    finally:
        logger.setLevel(level)


def read_ticket(path: "str | Path") -> tuple[dict, dict, dict]:
    """(ticket.json, masks, rewind weights) after verifying format version and every checksum."""
    path = Path(path)
    meta_path = path / "ticket.json"
    if not meta_path.exists():
        raise TicketError(f"{path} is not a ticket: {meta_path} is missing (export one with `tflottery export`).")
    meta = read_json(meta_path)
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise TicketError(f"{meta_path}: format_version {version!r} is newer than this tflottery reads "
                          f"({FORMAT_VERSION}); upgrade tflottery.")
    for name, digest in meta.get("files", {}).items():
        file = path / name
        if not file.exists():
            raise TicketError(f"{file} is missing from the ticket (listed in ticket.json); re-export the ticket.")
        if _sha256(file) != digest:
            raise TicketError(f"{file} does not match its sha256 in ticket.json: the file was altered or "
                              "corrupted; re-export the ticket.")
    masks, rewind = (_read_arrays(path / "masks.npz"), _read_arrays(path / "rewind.npz"))
    for name, mask in masks.items():
        if mask.dtype != np.bool_:
            raise TicketError(f"{path / 'masks.npz'}: mask {name!r} has dtype {mask.dtype}, not bool.")
    return meta, masks, rewind


def _read_arrays(path: Path) -> dict:
    try:
        return read_npz(path)
    except ValueError as error:  # np.load refuses object arrays without allow_pickle
        raise TicketError(f"{path} holds pickled objects, which tflottery never loads: {error}") from None


def load_ticket(path: "str | Path", weights: str = "trained") -> wrap_lib.MaskedModel:
    """A ticket as a tf_keras model with its masks enforced, ready for `compile` and `fit`.

    `weights="trained"` gives the trained sparse weights; `weights="rewind"` the ticket's
    initialisation for retraining. Pruned weights stay exactly zero however it is trained.
    """
    if weights not in ("trained", "rewind"):
        raise TicketError(f"weights={weights!r}: use 'trained' or 'rewind'.")
    meta, masks, rewind = read_ticket(path)
    plain = keras.models.load_model(Path(path) / "saved_model", compile=False)
    plain = keras.Model(plain.inputs, plain.outputs, name=meta["model"]["name"])
    model = apply_ticket(plain, path, weights=weights, _verified=(meta, masks, rewind))
    return model


def apply_ticket(model: keras.Model, path: "str | Path", weights: str = "rewind", _verified=None) -> wrap_lib.MaskedModel:
    """Put a ticket's masks (and its rewind weights, unless `weights="keep"`) on a matching model.

    `model` may come from the user's own code: layer names and shapes must match the ticket's.
    """
    require_tf_keras(model)
    meta, masks, rewind = _verified or read_ticket(path)
    variables = wrap_lib.weight_variables(model)
    for name, mask in masks.items():
        if name not in variables:
            raise TicketError(f"{Path(path) / 'masks.npz'}: mask {name!r} matches no layer of model "
                              f"{model.name!r}; its weights are {sorted(variables)[:8]}.")
        if tuple(variables[name].shape) != mask.shape:
            raise TicketError(f"{Path(path) / 'masks.npz'}: mask {name!r} has shape {mask.shape}, but the "
                              f"model's {name} has shape {tuple(variables[name].shape)}.")
    wrapped = wrap_lib.wrap(model, [k.split("/")[0] for k in masks])
    if weights == "rewind":
        try:
            wrap_lib.set_weights(wrapped, rewind)
        except ValueError as error:
            raise TicketError(f"{Path(path) / 'rewind.npz'}: {error}") from None
    wrap_lib.set_masks(wrapped, masks)
    return wrapped


def ticket_config(meta: dict) -> RunConfig:
    """The RunConfig the ticket was found with (for transfer and re-evaluation)."""
    return RunConfig.from_dict({"data": {k: meta["data"][k] for k in ("dataset", "labels", "remap_labels",
                                                                    "fraction", "fraction_part")},
                                "model": meta["model"]["config"], "pruning": meta["pruning"],
                                "training": meta["training"], "seed": meta["seed"], "replicate": meta["replicate"]})
