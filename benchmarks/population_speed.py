"""Population training speed: K units of LeNet-300-100 as one program, against one at a time.

K = 1, 2, 5, 10, 15 units (15 = 5 replicates x ticket, reinit, random_prune), each with its
own batch order and a 21.1% mask, batch 60, 55,000 Fashion-MNIST examples, with the engine's
settings (its kernels for this device, its threads, 50 steps per compiled call), in one
process. Configurations are timed in interleaved rounds (noise on a shared machine only adds
time: each K's fastest epoch counts, medians beside). Printed per K: the time per unit-epoch;
its ratio to K = 1, to one unit as tflottery 0.2 trained it (XLA, TensorFlow's threads; timed
in a subprocess, since threads are fixed when TensorFlow starts) and to the FLOP floor (one
unit-epoch's multiply-adds over this machine's GEMM rate: one op's rate on LeNet's own matrix
shapes, measured here, times the ops that run at once, every core at full speed); and the
cores the epoch kept busy (the process's CPU seconds over the wall seconds) with the CPU seconds
per unit-epoch. On a CPU it also prints the bound K = 1 sets: at one unit's CPU time, K units
on C cores take at least (cores busy at K = 1) / C of K = 1's time per unit.
Targets at K = 15: at most 0.55 of one unit on a CPU; on a GPU at least 10x throughput, i.e.
at most 0.10.
With `--keras 3 --backend jax` the same table for the Keras 3 trainer on JAX: K towers in one jitted
program (`tflottery.engine.trainer.jax_towers`), the images gathered on the device, 50 steps a call.
Run: python benchmarks/population_speed.py [--rounds 3] [--units 1,2,5,10,15] [--keras 3 --backend jax]
[--model vit_tiny] (any zoo model on 28x28x1: the FLOP floor and the 0.2 reference are printed for LeNet only)
[--steps N] (N steps a timed round instead of an epoch, for models whose epoch is long: "epoch" then means N steps)
"""
import argparse
import os
from contextlib import contextmanager
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TFLOTTERY_OFFLINE", "1")
if "--keras" in sys.argv and sys.argv[sys.argv.index("--keras") + 1] == "3":  # before tfmot loads Keras 3
    os.environ["KERAS_BACKEND"] = sys.argv[sys.argv.index("--backend") + 1] if "--backend" in sys.argv else "jax"
import tflottery  # noqa: E402,F401
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import load_data  # noqa: E402
from tflottery import models  # noqa: E402
from tflottery.config import PruningConfig, TrainingConfig  # noqa: E402
from tflottery.engine.distribute import threads_for_towers  # noqa: E402
from tflottery.engine.optim import compile_model, use_xla  # noqa: E402
from tflottery.engine.plan import training_steps  # noqa: E402
from tflottery.engine.trainer.population import PopulationData, population_model  # noqa: E402
from tflottery.pruning import masks as mask_lib, wrap as wrap_lib  # noqa: E402
from tflottery.pruning.resolve import bind  # noqa: E402

LAYERS = [(784, 300), (300, 100), (100, 10)]
BATCH = 60
MODEL = "lenet_300_100"  # --model: any zoo model on Fashion-MNIST's shape (vit_tiny: the transformer)
STEPS = 0  # --steps: steps a timed round (0: an epoch)


def round_steps(data) -> int:
    return STEPS or data.steps_per_epoch


def flops_per_step() -> float:
    """Forward (2 W B), weight gradients (2 W B) and input gradients of every layer but the first."""
    weights = sum(i * o for i, o in LAYERS)
    return 2.0 * BATCH * (2 * weights + weights - LAYERS[0][0] * LAYERS[0][1])


def gemm_rate(repeat: int = 400) -> float:
    """FLOP/s of TensorFlow's matmul on LeNet's forward and backward shapes at batch 60 (best of 3)."""
    rng = np.random.default_rng(0)
    shapes = [((BATCH, i), (i, o)) for i, o in LAYERS] + [((i, BATCH), (BATCH, o)) for i, o in LAYERS] \
        + [((BATCH, o), (o, i)) for i, o in LAYERS[1:]]
    pairs = [(tf.constant(rng.normal(size=a).astype(np.float32)), tf.constant(rng.normal(size=b).astype(np.float32)))
             for a, b in shapes]
    flops = sum(2.0 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in pairs)

    @tf.function(jit_compile=True)
    def step():
        return [tf.matmul(a, b) for a, b in pairs]

    step()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            out = step()
        _ = out[0].numpy()
        best = min(best, (time.perf_counter() - start) / repeat)
    return flops / best


def population(units: int, engine: TrainingConfig, data):
    base = models.build(MODEL, (28, 28, 1), 10, seed=0)
    kinds = wrap_lib.prunable_kinds(base)
    model = compile_model(population_model(base, list(kinds), units), engine,
                          training_steps(engine, data.steps_per_epoch), with_loss=False)
    strategy = bind(PruningConfig(), kinds, wrap_lib.kernel_shapes(base))
    plan = strategy.plan(7)
    for c in range(units):
        weights = models.fresh_weights(base, c)
        masks = mask_lib.ones_like(weights, kinds)
        for level in range(1, 8):
            masks = strategy.prune(weights, masks, plan[level])
        model.set_tower(c, weights, masks)
    return model, PopulationData(data, list(range(units)))


def epochs(units: list, rounds: int, jit) -> dict:
    """{K: seconds of each timed epoch}, the K interleaved in each round (round 0 compiles and warms up)."""
    data = load_data()
    spe = round_steps(data)
    engine = TrainingConfig(jit_compile=jit)
    built = {k: population(k, engine, data) for k in units}
    times = {k: [] for k in units}
    for r in range(rounds + 1):
        for k, (model, batches) in built.items():
            with timing(times[k], r):
                model.fit(model.pipeline(batches, r * spe, (r + 1) * spe), steps_per_epoch=spe, epochs=1, verbose=0)
    return times


def epochs_keras3(units: list, rounds: int, backend: str) -> dict:
    """{K: seconds of each timed epoch} of the Keras 3 trainer's towers (JAX), interleaved as `epochs`."""
    from tflottery.data import batch_indices
    from tflottery.engine.trainer.keras3 import Keras3Trainer

    data = load_data()
    spe = round_steps(data)
    engine = TrainingConfig(keras=3, backend=backend)
    engine.validate()
    base = models.build(MODEL, (28, 28, 1), 10, seed=0)
    kinds = wrap_lib.prunable_kinds(base)
    trainer = Keras3Trainer(base, list(kinds), capacity=max(units), backend=backend)
    steps = training_steps(engine, spe)
    optimizer, slots = trainer._optimizer(None, engine, steps, 0)
    towers = trainer._towers_for(None, engine)
    strategy = bind(PruningConfig(), kinds, wrap_lib.kernel_shapes(base))
    plan = strategy.plan(7)
    weights, masks = [], []
    for c in range(max(units)):
        w = models.fresh_weights(base, c)
        m = mask_lib.ones_like(w, kinds)
        for level in range(1, 8):
            m = strategy.prune(w, m, plan[level])
        weights.append({k: w[k] * m[k] if k in m else w[k] for k in w})
        masks.append(m)
    built = {k: towers.states(weights[:k], masks[:k], slots) for k in units}
    times = {k: [] for k in units}
    for r in range(rounds + 1):
        for k in units:
            indices = np.stack([batch_indices(data.num_train, data.batch_size, c, r * spe, (r + 1) * spe)
                                for c in range(k)], axis=1)
            with timing(times[k], r):
                built[k] = towers.run_steps(optimizer, built[k], data, indices)
                towers.jax.block_until_ready(built[k])
    return times


@contextmanager
def timing(into: list, round_: int):
    """Appends (wall seconds, cores busy: the process's CPU seconds over them) of the block, except in round 0."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if round_:
        into.append((wall, cpu / wall))


def as_0_2(rounds: int) -> float:
    """The best epoch of one unit as tflottery 0.2 trained it: XLA, TensorFlow's threads (a fresh process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_NUM_")}
    out = subprocess.run([sys.executable, __file__, "--as_0_2", "--rounds", str(rounds)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main(rounds: int, units: list, jit, threads: str, backend: "str | None" = None) -> None:
    times = epochs(units, rounds, jit) if backend is None else epochs_keras3(units, rounds, backend)
    lenet = MODEL == "lenet_300_100"  # 0.2's reference and the FLOP floor are LeNet's
    reference = as_0_2(rounds) if lenet else float("nan")
    data = load_data()
    spe = round_steps(data)
    device = tf.config.list_physical_devices("GPU")
    parallel = 1 if device else max(1, tf.config.threading.get_inter_op_parallelism_threads() or os.cpu_count())
    rate = gemm_rate() * parallel
    floor = flops_per_step() * spe / rate if lenet else float("nan")
    where = f"GPU {device[0].name}" if device else f"{os.cpu_count()} CPUs"
    kernels = ("XLA" if use_xla(jit) else "graph + fused Adam") if backend is None else \
        f"Keras 3 on {backend}, towers in one jitted program"
    span = f"{spe}-step rounds as epochs" if STEPS else f"{data.num_train} examples"
    print(f"{MODEL} at 21.1%, batch {BATCH}, {span} ({data.info['source']}), {where}, "
          f"{kernels}, threads {threads}, 50 steps per call; {rounds} interleaved epochs per K"
          + (f"; GEMM rate {rate / 1e9:.1f} GFLOP/s on LeNet's shapes ({parallel} at once): FLOP floor {floor:.2f} s "
             f"per unit-epoch ({flops_per_step() * spe / 1e9:.1f} GFLOP); one unit as 0.2 trained it: {reference:.2f} s "
             "an epoch" if lenet else "") + "\n")
    print(f"{'K':>3} {'best s/epoch':>13} {'median':>8} {'s per unit-epoch':>17} {'vs K=1':>8} {'vs 0.2':>8} "
          f"{'vs floor':>9} {'cores busy':>11} {'CPU s per unit-epoch':>21}")
    best = {k: min(times[k]) for k in units}  # (wall, cores busy) of the fastest epoch
    one = best[units[0]][0] / units[0]
    for k in units:
        median = statistics.median(wall for wall, _ in times[k])
        per_unit = best[k][0] / k
        versus = [f"{per_unit / x:7.2f}x" if lenet else f"{'-':>8}" for x in (reference, floor)]
        print(f"{k:>3} {best[k][0]:13.2f} {median:8.2f} {per_unit:17.3f} {per_unit / one:7.2f}x "
              f"{versus[0]} {versus[1]:>9} {best[k][1]:11.2f} {per_unit * best[k][1]:21.3f}")
    last = units[-1]
    per_unit = best[last][0] / last
    target = 0.10 if device else 0.55
    for against, seconds in ((f"K={units[0]}", one), *((("one unit in 0.2", reference),) if lenet else ())):
        ratio = per_unit / seconds
        print(f"K={last} per unit-epoch / {against}: {ratio:.2f}x (target <= {target:.2f}) "
              f"{'PASS' if ratio <= target else 'FAIL'}")
    if not device:
        cores, cpu_one = os.cpu_count() or 1, one * best[units[0]][1]
        print(f"K={units[0]} keeps {best[units[0]][1]:.2f} of {cores} cores busy: at its CPU time per unit-epoch "
              f"({cpu_one:.3f} s), K units on {cores} cores take at least {cpu_one / cores:.3f} s per unit-epoch, "
              f"{best[units[0]][1] / cores:.2f}x of K={units[0]}; only a group that spends less CPU per unit than one "
              f"unit alone goes lower (K={last}: {per_unit * best[last][1]:.3f} s).")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--units", default="1,2,5,10,15")
    parser.add_argument("--jit", default="auto", help="auto (the engine's default), true (XLA) or false")
    parser.add_argument("--threads", default="", help="intra,inter op threads (default: the engine's)")
    parser.add_argument("--keras", type=int, default=2, help="2 (tf_keras populations) or 3 (the Keras 3 trainer)")
    parser.add_argument("--backend", default="jax", help="Keras 3's backend (with --keras 3): jax")
    parser.add_argument("--model", default=MODEL, help="a zoo model on 28x28x1 inputs: lenet_300_100, vit_tiny, ...")
    parser.add_argument("--steps", type=int, default=0, help="steps a timed round (default: an epoch)")
    parser.add_argument("--as_0_2", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    MODEL, STEPS = args.model, args.steps
    if args.as_0_2:
        print(min(epochs([1], args.rounds, True)[1])[0])
        sys.exit(0)
    if args.threads:
        intra, inter = (int(t) for t in args.threads.split(","))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
        threads = f"{intra} per op, {inter} ops at once"
    else:
        threads = threads_for_towers()
    jit = args.jit if args.jit == "auto" else args.jit.lower() in ("1", "true")
    if args.keras == 3:
        os.environ["KERAS_BACKEND"] = args.backend
    main(args.rounds, [int(k) for k in args.units.split(",")], jit, threads, args.backend if args.keras == 3 else None)
