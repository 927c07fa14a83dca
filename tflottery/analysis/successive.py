"""The barrier between successive levels (Paul et al. 2023, "Unmasking the Lottery Ticket Hypothesis").

IMP trains level L, prunes it to level L+1's mask m, rewinds and trains again. Paul et al. find
that IMP works where the level-L solution, projected onto the next mask (m * w_L), and the
level-(L+1) solution w_{L+1} are linearly connected: the test error along
w(a) = (1 - a) m * w_L + a w_{L+1}, a in [0, 1], rises little above its ends. Per replicate and
pair of finished levels this measures that barrier (the largest error on the path minus the mean of
its ends, in points, on the test set; batch-norm statistics recomputed at each point where the
model has them), the angle between the two masked solutions and their distance relative to
|m * w_L|; the figure draws each against the weights remaining at L+1, mean and 95% interval over
replicates. Each measurement is stored in the run (`level_<L+1>/successive/<key>.json`), so a
second call measures only what is new.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Optional

import numpy as np

from tflottery.analysis.base import Analysis, Runs

KIND = "successive"
ALPHAS = 11


def key_of(previous: int, alphas: int, train_examples: int) -> str:
    return hashlib.sha256(json.dumps([previous, alphas, train_examples]).encode()).hexdigest()[:10]


def geometry(a: dict, b: dict, names: list) -> dict:
    """The angle (degrees) between two weight sets over `names` and their distance relative to |a|."""
    u = np.concatenate([a[k].astype(np.float64).ravel() for k in names])
    v = np.concatenate([b[k].astype(np.float64).ravel() for k in names])
    norm_u, norm_v = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    cosine = float(u @ v) / (norm_u * norm_v) if norm_u and norm_v else float("nan")
    return {"angle_deg": math.degrees(math.acos(max(-1.0, min(1.0, cosine)))) if math.isfinite(cosine) else None,
            "relative_distance": float(np.linalg.norm(u - v)) / norm_u if norm_u else None}


def measure_replicate(ctx, alphas: int = ALPHAS, train_examples: int = 10000) -> list[dict]:
    """Every pair of successive finished ticket levels of one replicate, measured (or read where stored)."""
    from tflottery import data as data_lib
    from tflottery.engine.stability import BN_BATCHES, has_batch_norm, path

    store, levels = ctx.store, ctx.store.levels()
    pairs = [(levels[i], levels[i + 1]) for i in range(len(levels) - 1)]
    todo = [(lo, hi) for lo, hi in pairs
            if store.load_analysis(hi, KIND, key_of(lo, alphas, train_examples)) is None]
    if todo:
        model = ctx.trainer.model_for(1, None, ctx.config.training, ctx.plan.training)
        x, y = ctx.data.arrays["train"]
        subset = data_lib.eval_pipeline(x[:train_examples], y[:train_examples], divisor=ctx.data.divisor)
        for lo, hi in todo:
            before, after = store.load_level(lo), store.load_level(hi)
            masks = after.masks
            projected = {k: (w * masks[k]).astype(w.dtype) if k in masks else w for k, w in before.final.items()}
            bn = list(ctx.data.train_pipeline(ctx.seed(hi, "bn", "data_order"), BN_BATCHES)) \
                if has_batch_norm(model) else None
            line = path(model, projected, after.final, masks, alphas, ctx.data.test, subset, bn)
            record = {"from_level": lo, "level": hi, "remaining": after.metrics["remaining"], "alphas": alphas,
                      "train_examples": train_examples, **line, **geometry(projected, after.final, sorted(masks))}
            store.save_analysis(hi, KIND, key_of(lo, alphas, train_examples), record)
    return [store.load_analysis(hi, KIND, key_of(lo, alphas, train_examples)) for lo, hi in pairs]


def summarize(records: list[dict]) -> list[dict]:
    """Per pair of levels: the barrier, train barrier, angle and distance, each an interval over replicates."""
    from tflottery.core.stats import interval

    out = []
    for hi in sorted({r["level"] for r in records}):
        at = [r for r in records if r["level"] == hi]
        row = {"from_level": at[0]["from_level"], "level": hi, "remaining": at[0]["remaining"], "n": len(at)}
        for name in ("instability", "train_instability", "angle_deg", "relative_distance"):
            values = [r[name] for r in at if r.get(name) is not None]
            row[name] = interval(values) if values else None
        out.append(row)
    return out


def text(rows: list[dict]) -> str:
    lines = ["| levels | remaining % | test-error barrier (points) | train-error barrier | angle (degrees) | "
             "distance / norm | n |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cells = [f"{r['from_level']} -> {r['level']}", f"{100 * r['remaining']:.1f}"]
        cells += [r[k].text(1.0, 2) if r.get(k) else "–" for k in ("instability", "train_instability")]
        cells += [r["angle_deg"].text(1.0, 1) if r.get("angle_deg") else "–",
                  r["relative_distance"].text(1.0, 3) if r.get("relative_distance") else "–", str(r["n"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stored(store) -> list[dict]:
    return [{**record, "replicate": r} for r in store.replicates() for _, record in store.replicate(r).analyses(KIND)]


class SuccessiveLevels(Analysis):
    name = KIND
    description = "the error barrier, angle and distance between the trained solutions of successive levels"
    suffix = "_successive"
    command = "analyze levels"
    accuracy_only = True

    def figures(self, runs: Runs, out: Path, metric: str, **options) -> list[Path]:
        from tflottery import plots

        series = {}
        for store, name in zip(runs.stores, runs.names):
            records = stored(store)
            if records:
                series[name] = records
        if not series:
            return []
        return [plots.by_remaining(series, self.path(out), metric="instability",
                                   ylabel="test-error barrier between level L and L+1 (points)",
                                   title="Successive IMP solutions: linear-path error barrier", scale=1.0,
                                   caption="Each point: level L (masked to level L+1's mask) to level L+1, at "
                                           "L+1's weights remaining.")]


def level_barriers(run: "str | Path", alphas: int = ALPHAS, train_examples: int = 10000,
                   replicates: Optional[list] = None, verbose: Optional[bool] = None) -> list[dict]:
    """Measure (or read) the barrier between successive levels of every replicate of `run`; the per-pair
    intervals over replicates (`summarize`)."""
    from tflottery.core.errors import ConfigError
    from tflottery.core.values import as_int
    from tflottery.engine.run import open_run, replicate_context

    alphas = as_int(alphas, "alphas", 3, 101, hint="points on the path, e.g. 11.")
    train_examples = as_int(train_examples, "train_examples", 1, hint="training examples the train error uses.")
    from tflottery.engine.trainer import trainer_kind

    setup = open_run(run, verbose)
    trainer_kind(setup.config.training).check_analysis("successive-levels", setup.store.path)
    chosen = setup.store.replicates() if replicates is None else list(replicates)
    if not chosen or any(setup.store.replicate(r).levels() == [] for r in chosen):
        raise ConfigError(f"{setup.store.path}: no finished levels in replicates {chosen}: train the run first.")
    if all(len(setup.store.replicate(r).levels()) < 2 for r in chosen):
        raise ConfigError(f"{setup.store.path} has fewer than two finished levels: nothing to connect; train more "
                          "levels (`tflottery find ... --levels=N`).")
    records = []
    setup.store.lock()
    try:
        trainer = None
        for r in chosen:
            ctx = replicate_context(setup, r, trainer=trainer)
            trainer = ctx.trainer
            records += measure_replicate(ctx, alphas, train_examples)
    finally:
        setup.store.unlock()
    return summarize(records)
