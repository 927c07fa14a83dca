"""Retrain a ticket on new data, labels or optimizer, keeping its mask (Morcos et al. 2019).

The ticket starts from its rewind weights. When the new task has a different number of
classes, the output layer is replaced: fresh Gaussian Glorot initialisation, pruned by a
seeded random mask to the ticket's own output-layer sparsity (a magnitude mask cannot be
had for weights that never trained). Results are written like an IMP level.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery import data as data_lib
from tflottery.config import DataConfig, Step, TrainingConfig, build
from tflottery.keras_compat import keras
from tflottery.lottery import fresh_weights
from tflottery.pruning import masks as mask_lib
from tflottery.pruning import wrap as wrap_lib
from tflottery.runs import MAIN, LevelRecord, RunDir, write_csv, write_json
from tflottery.tickets import TicketError, read_ticket, ticket_config
from tflottery.training import compile_model, progress_line, reset_optimizer, train_level


def _replace_output(model: keras.Model, num_classes: int, seed: int) -> keras.Model:
    out_layer = model.layers[-1]
    if not isinstance(out_layer, keras.layers.Dense) or len(model.outputs) != 1:
        raise TicketError(f"Cannot swap the head of {model.name!r}: its last layer {out_layer.name!r} is not "
                          "a Dense output layer.")
    config = dict(out_layer.get_config(), units=num_classes,
                  kernel_initializer={"class_name": "GlorotNormal", "config": {"seed": seed}})
    head = keras.layers.Dense.from_config(config)
    return keras.Model(model.inputs, head(out_layer.input), name=model.name)


def transfer(ticket: "str | Path", data: "DataConfig | dict", training: "TrainingConfig | dict | None" = None, *,
             seed: int = 0, branches: tuple = ("reinit",), runs_dir: str = "runs", name: Optional[str] = None) -> RunDir:
    """Retrain `ticket` from its rewind weights on `data` with `training` (default: the ticket's own).

    Writes `runs_dir/<name>/level_<L>/` (and `reinit/`: the same mask, fresh initialisation).
    """
    meta, masks, rewind = read_ticket(ticket)
    found = ticket_config(meta)
    data_cfg = build(DataConfig, data, "data") if isinstance(data, dict) else data
    train_cfg = training if isinstance(training, TrainingConfig) else \
        build(TrainingConfig, {**asdict(found.training), **(training or {})}, "training")
    data_cfg.validate(), train_cfg.validate()
    keras.utils.set_random_seed(seed)
    dataset = data_lib.load(data_cfg, train_cfg.batch_size, seed)

    model = keras.models.load_model(Path(ticket) / "saved_model", compile=False)
    if tuple(model.input_shape[1:]) != tuple(dataset.input_shape):
        raise TicketError(f"The ticket takes inputs of shape {tuple(model.input_shape[1:])} but {data_cfg.dataset} "
                          f"has {tuple(dataset.input_shape)}: transfer needs the same input shape.")
    model = keras.Model(model.inputs, model.outputs, name=meta["model"]["name"])
    head = model.layers[-1].name
    if model.output_shape[-1] != dataset.num_classes:
        model = _replace_output(model, dataset.num_classes, seed)
        new = wrap_lib.get_weights(model)
        kept = masks[f"{head}/kernel"].mean()
        shape = new[f"{head}/kernel"].shape
        template = np.zeros(int(np.prod(shape)), bool)
        template[:int(round(kept * template.size))] = True
        masks = dict(masks, **mask_lib.random_like({f"{head}/kernel": template.reshape(shape)}, seed))
        rewind = dict(rewind, **{k: v for k, v in new.items() if k.startswith(f"{head}/")})

    spec = {"ticket": meta["run"], "level": meta["level"], "data": asdict(data_cfg),
            "training": asdict(train_cfg), "seed": seed}
    name = name or f"transfer-{meta['run']}-L{meta['level']}-" + \
        hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:10]
    run = RunDir(Path(runs_dir) / name)
    write_json(run.path / "config.json", {**spec, "ticket_path": str(ticket), "found_with": found.to_dict()})
    write_json(run.path / "data.json", dataset.describe())
    (run.path / "model.json").write_text(model.to_json())

    wrapped = compile_model(wrap_lib.wrap(model, [k.split("/")[0] for k in masks]), train_cfg, dataset.steps_per_epoch)
    steps = Step.parse(train_cfg.steps).to_steps(dataset.steps_per_epoch)
    starts = {MAIN: rewind}
    if "reinit" in branches:
        starts["reinit"] = lambda: fresh_weights(model, seed + 1)
    for branch, start in starts.items():
        if run.is_done(meta["level"], branch):
            continue
        wrap_lib.set_weights(wrapped, start() if callable(start) else start)
        wrap_lib.set_masks(wrapped, masks)
        reset_optimizer(wrapped)
        started = wrap_lib.get_weights(wrapped)
        result = train_level(wrapped, dataset, train_cfg, steps, seed=seed * 1000 + list(starts).index(branch))
        remaining = mask_lib.remaining(masks)
        metrics = {"level": meta["level"], "branch": branch, "remaining": remaining["total"],
                   "layers_remaining": {k: v for k, v in remaining.items() if k != "total"}, "steps": steps,
                   "data_source": dataset.info["source"], "history": result.history, **result.summary()}
        run.save_level(meta["level"], branch, LevelRecord(masks, started, wrap_lib.get_weights(wrapped), metrics))
        if train_cfg.verbose:
            print(progress_line(dict(metrics, branch=f"transfer/{branch}")), flush=True)
    write_csv(run.path / "results.csv", run.summary())
    return run

