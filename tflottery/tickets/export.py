"""Exporting one branch of one level of a run as a ticket directory (format: `tflottery.tickets.format`).

The ticket is assembled beside its target and swapped in whole (`tflottery.core.files.atomic_directory`):
at every instant the target path holds the old ticket or the new one. An existing target is
replaced only with `overwrite=True`, and only if it is a tflottery ticket: export never
removes anything else.
"""
from __future__ import annotations

import json

import importlib.metadata
import platform
from pathlib import Path
from typing import Optional

from tflottery.core.errors import TicketError
from tflottery.core.files import atomic_directory, atomic_write, npz_bytes, read_json, write_json
from tflottery.core.values import as_bool
from tflottery.engine.store import TICKET, LevelRecord, RunStore
from tflottery.pruning.masks import remaining, weight_counts
from tflottery.tickets import format as fmt

DEFAULT_DIR = Path("saved_tickets")


def export_ticket(run, level: Optional[int] = None, out: "str | Path | None" = None, *, branch: str = TICKET,
                  replicate: int = 0, overwrite: bool = False, data=None, shrink: bool = False) -> Path:
    """Write the ticket of `level` (default: the last finished) of a run as a ticket directory.

    `shrink`: the ticket as a smaller dense network, every channel that no longer matters deleted
    (`tflottery.models.channels.shrink`: a channel ticket's removed channels, and any neuron or filter
    no surviving weight reads); its predictions are the masked network's, to float rounding.

    `run` is a run directory (path), a `RunStore`, a `Run`, or the `tflottery.Rewind` callback of
    IMP in your own fit (then `data`, a tflottery Data, is recorded if given). Returns the ticket's
    path (default `saved_tickets/<run>-r<replicate>-level_<L>[-<branch>]`).
    """
    overwrite, shrink = as_bool(overwrite, "overwrite"), as_bool(shrink, "shrink")
    if out is not None and not isinstance(out, (str, Path)) or out == "":
        raise TicketError(f"out={out!r} must be the path of the ticket folder to write (or left out).")
    if not isinstance(branch, str):
        raise TicketError(f"branch={branch!r} must be a branch name, e.g. ticket or reinit.")
    if hasattr(run, "record") and callable(run.record) and hasattr(run, "events"):
        return _export_own_fit(run, out, overwrite, data)
    store = _store(run)
    if isinstance(replicate, bool) or not isinstance(replicate, int) or replicate not in store.replicates():
        raise TicketError(f"{store.path} has no replicate {replicate!r}; replicates: {store.replicates()}.")
    rep = store.replicate(replicate)
    finished = rep.levels(branch)
    if level is None and finished:
        level = finished[-1]
    if isinstance(level, bool) or not isinstance(level, int) or level not in finished:
        raise TicketError(f"Level {level} ({branch}) of {rep.path} is not finished; finished levels: {finished}.")
    out = Path(out) if out is not None else DEFAULT_DIR / (
        f"{store.name}-r{replicate}-level_{level}" + ("" if branch == TICKET else f"-{branch}"))
    check_output(out)
    check_replaceable(out, overwrite)
    record = rep.load_level(level, branch)
    architecture = rep.branch_architecture(level, branch) or store.architecture()
    data_info = rep.branch_data(level, branch) or store.data_info()
    config = store.config()
    params = rep.branch_meta(level, branch).get("params", {})
    from tflottery.models import get_weights

    masks = record.masks
    refused = unrebuildable(architecture)
    plain = None if refused else _plain_model(architecture, record)
    weights = get_weights(plain) if plain is not None else \
        {k: v * masks[k] if k in masks else v for k, v in record.final.items()}
    rewind = {k: v * masks[k] if k in masks else v for k, v in record.start.items()}
    shrunk = None
    if shrink:
        plain, weights, masks, rewind, shrunk = _shrunk(plain, weights, masks, rewind, refused, rep.path)
    name = plain.name if plain is not None else json.loads(architecture).get("config", {}).get("name", store.name)
    with atomic_directory(out, may_replace=lambda target: check_replaceable(target, overwrite)) as tmp:
        if plain is not None:
            _save_model(plain, tmp / "saved_model", data_info.get("class_names"))
            atomic_write(tmp / "model.json", plain.to_json().encode())
        atomic_write(tmp / "weights.npz", npz_bytes(weights))
        atomic_write(tmp / "masks.npz", npz_bytes(masks))
        atomic_write(tmp / "rewind.npz", npz_bytes(rewind))
        files = {p.relative_to(tmp).as_posix(): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        meta = {
            "format": fmt.FORMAT, "format_version": fmt.VERSION, "outputs": "logits",
            "model": {"name": name, "config": config["model"]}, "data": data_info,
            "class_names": data_info.get("class_names"), "preprocessing": data_info.get("preprocessing"),
            "inputs": input_contract(plain, data_info.get("class_names")) if plain is not None else
            f"weights only: load_ticket(path, model=...) fills a model of your own ({', '.join(refused)})",
            "pruning": config["pruning"], "training": params.get("training", config["training"]),
            "level": level, "branch": branch, "replicate": replicate, "seed": config["seed"],
            "rewind_step": int(record.metrics.get("rewind_step", 0)), "pruned": sorted(masks),
            "remaining": remaining(masks), "metrics": {k: v for k, v in record.metrics.items() if k != "history"},
            "run": store.name, "versions": _versions(), "files": files,
            "digest_covers": fmt.DIGEST_COVERS, "saved_model": fmt.SAVED_MODEL_NOTE,
        }
        counts = store.weight_counts(branch)
        if shrunk is not None:
            meta["shrunk"] = shrunk
            counts = (None, shrunk["weights"][1] - sum(m.size for m in masks.values()))
        if counts is not None:  # what remains of every trainable weight, beside the pruned variables' `remaining`
            meta["weights"] = weight_counts(masks, counts[1])
        if refused:
            meta["weights_only"] = {"why": f"{', '.join(refused)}: tickets rebuild only built-in Keras layers",
                                    "inputs": [int(d) for d in (data_info.get("input_shape") or [])]}
        if rep.rewind_choice() is not None:  # rewind=auto: the probe that chose the rewind step
            meta["rewind_probe"] = rep.rewind_choice()
        meta["digest"] = fmt.digest_of(meta)
        write_json(tmp / "ticket.json", meta)
    return out


def _shrunk(plain, weights: dict, masks: dict, rewind: dict, refused: list, where: Path) -> tuple:
    """The ticket as a smaller dense network: (model, weights, masks, rewind weights, what ticket.json says of it)."""
    from tflottery.models import get_weights
    from tflottery.models.channels import shrink

    if plain is None:
        raise TicketError(f"{where}: shrink rebuilds the network smaller, and this one is weights-only "
                          f"({', '.join(refused)}): export it without --shrink.")
    cut = shrink(plain, weights, masks)
    if not cut.removed:
        raise TicketError(f"{where}: no channel of this ticket can go (every neuron and filter is still read): find it "
                          "with --structure=channels to shrink it, or export it without --shrink.")
    before = sum(int(v.shape.num_elements()) for v in plain.trainable_weights)
    after = sum(int(v.shape.num_elements()) for v in cut.model.trainable_weights)
    described = {"channels": {k: list(v) for k, v in cut.removed.items()}, "weights": [before, after]}
    return cut.model, get_weights(cut.model), cut.masks, cut.cut(rewind), described


def _export_own_fit(rewind, out, overwrite: bool, data) -> Path:
    """A ticket of a `Rewind` callback's model as it is now (the last level of IMP in a user's fit)."""
    import tempfile

    if out is None:
        raise TicketError("export_ticket(rewind, out=...) needs the folder to write the ticket to.")
    record = rewind.record()
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "own-fit")
        store.write_spec({"own_fit": True})
        store.describe({"model": {"name": record["name"]}, "pruning": {"rewind": record["rewind"]},
                        "training": record.get("training", {}), "seed": 0},
                       data.describe() if data is not None else {"dataset": "unknown",
                                                                  "input_shape": record.get("inputs")},
                       {}, record["architecture"])
        store.replicate(0).save_level(record["metrics"]["level"], TICKET,
                                      LevelRecord(record["masks"], record["start"], record["final"], record["metrics"]))
        return export_ticket(store, record["metrics"]["level"], out, overwrite=overwrite)


def _store(run) -> RunStore:
    if isinstance(run, RunStore):
        return run
    if hasattr(run, "store"):
        return run.store
    if not isinstance(run, (str, Path)):
        raise TicketError(f"export_ticket needs a run directory, got {type(run).__name__}.")
    path = Path(run)
    if not (path / "spec.json").exists() and not (path / "config.json").exists():
        raise TicketError(f"{path} is not a run directory (no spec.json): pass the folder `tflottery find` made.")
    return RunStore.open(path)


def check_replaceable(target: Path, overwrite: bool) -> None:
    """Refuse to replace anything but a tflottery ticket, and a ticket only with `overwrite`."""
    if not (target.exists() or target.is_symlink()):
        return
    if target.is_symlink() or not target.is_dir():
        raise TicketError(f"{target} exists and is not a ticket directory: export never replaces it. Choose "
                          "another --out.")
    entries = {p.name for p in target.iterdir()}
    ours = (target / "ticket.json").is_file() and entries <= fmt.OURS
    if ours:
        try:
            ours = read_json(target / "ticket.json").get("format_version") in (1, 2)
        except (ValueError, OSError):
            ours = False
    if not ours:
        raise TicketError(f"{target} exists and is not a tflottery ticket (it holds {sorted(entries)[:6]}): export "
                          "never removes it. Choose another --out.")
    if not overwrite:
        raise TicketError(f"{target} already holds a ticket: pass --overwrite (overwrite=True) to replace it, or "
                          "choose another --out.")


def check_output(out: Path) -> None:
    """A ticket goes where a folder can be: never inside another ticket or a run."""
    for folder in [out.parent, *out.parent.parents]:
        if (folder / "ticket.json").is_file() or (folder / "spec.json").is_file():
            raise TicketError(f"{out} lies inside {folder}, a {'ticket' if (folder / 'ticket.json').is_file() else 'run'} "
                              "whose files are tflottery's own: choose a folder outside it.")


def unrebuildable(architecture: str) -> list:
    """What of an architecture a ticket cannot rebuild without running code (its Lambda or custom layers, or the
    whole network when code builds it), as "name (class)"; [] when the ticket can rebuild it (`read`'s allowlist).
    Such a network's ticket holds its weights and masks only."""
    from tflottery.models.built import KIND as BUILT
    from tflottery.tickets.read import check_architecture

    description = json.loads(architecture)
    if description.get("class_name") == BUILT:
        return [f"{description['config'].get('name')} (built by {description['config'].get('builder')})"]
    refused = []
    for layer in description.get("config", {}).get("layers", []):
        try:
            check_architecture(layer, Path("model.json"))
        except TicketError:
            refused.append(f"{layer.get('config', {}).get('name')} ({layer.get('class_name')})")
    return refused


def _plain_model(architecture: str, record):
    """The stripped model at the record's trained weights, pruned weights exactly zero (our own run: trusted)."""
    from tflottery.core.keras_compat import keras
    from tflottery.models import set_weights
    from tflottery.pruning import wrap

    model = keras.models.model_from_json(architecture)
    wrapped = wrap.wrap(model, list(record.masks))
    set_weights(wrapped, record.final)
    wrap.set_masks(wrapped, record.masks)
    return wrap.strip(wrapped)


INPUT_CONTRACT = ("Inputs: float32 images, NHWC [batch, {shape}], scaled to [0, 1] (uint8 pixels / 255: the "
                  "training's only preprocessing). Or uint8 pixels through the images_uint8 signature, which "
                  "divides by 255 itself. Outputs: logits (serving_default) or softmax probabilities "
                  "(probabilities) over {classes} classes{names}.")


def input_contract(model, class_names) -> str:
    """What the SavedModel's signatures take and give, in words (its assets/INPUTS.txt)."""
    shape = ", ".join(str(d) for d in model.input_shape[1:])
    names = f": {', '.join(map(str, class_names))}" if class_names else ""
    return INPUT_CONTRACT.format(shape=shape, classes=model.output_shape[-1], names=names)


def _save_model(model, path: Path, class_names=None) -> None:
    """SavedModel with `serving_default` -> {"logits"}, `probabilities` -> {"probabilities"} (float images in
    [0, 1]) and `images_uint8` -> {"logits"} (raw pixels); `assets/INPUTS.txt` states the contract."""
    import tempfile

    import tensorflow as tf

    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="images")
    raw = tf.TensorSpec([None, *model.input_shape[1:]], tf.uint8, name="images_uint8")

    @tf.function(input_signature=[spec])
    def logits(images):
        return {"logits": model(images, training=False)}

    @tf.function(input_signature=[spec])
    def probabilities(images):
        return {"probabilities": tf.nn.softmax(model(images, training=False))}

    @tf.function(input_signature=[raw])
    def images_uint8(images_uint8):
        return {"logits": model(tf.cast(images_uint8, tf.float32) / 255.0, training=False)}

    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # tf_keras warns about compile metrics of an uncompiled model: noise here
    with tempfile.TemporaryDirectory() as tmp:
        contract = Path(tmp) / "INPUTS.txt"
        contract.write_text(input_contract(model, class_names) + "\n")
        model.input_contract = tf.saved_model.Asset(str(contract))
        try:
            model.save(path, save_format="tf", include_optimizer=False,
                       signatures={"serving_default": logits, "probabilities": probabilities,
                                   "images_uint8": images_uint8})
        finally:
            logger.setLevel(level)


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("tensorflow", "tf-keras", "tensorflow-model-optimization", "tflottery"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out
