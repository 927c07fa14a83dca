"""IMP in a user's own Keras 3 fit (`Keras3IMP`), on the TensorFlow backend and on JAX, each in a process of its
own: the plan's survivor fractions, the masks the project's strategy draws from the trained weights, rewinding,
exact zeros after every step under three optimizers; the ticket it exports loads in tf_keras, plain TensorFlow
and Keras 3 with the same predictions, and its TFLite file passes the converter's checks."""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow
LEVEL_STEPS, LEVELS = 12, 3

FIT = r'''
import json, sys
import numpy as np
import keras
from tflottery import Keras3IMP, export_ticket, load_ticket, models
from tflottery.data import read_sample
from tflottery.models.keras3 import get_weights, translate

LEVEL_STEPS, LEVELS, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
(x, y), (x_test, _) = read_sample()
x, x_test = x.astype("float32") / 255.0, x_test[:64].astype("float32") / 255.0


def synced(model):
    if hasattr(model, "jax_state_sync"):
        model.jax_state_sync()
    return get_weights(model)


class Before(keras.callbacks.Callback):  # listed before Keras3IMP: the weights and masks each event prunes from
    def __init__(self, imp):
        super().__init__()
        self.imp, self.seen = imp, {}

    def on_train_batch_begin(self, batch, logs=None):
        level = self.imp.level + 1
        if level <= LEVELS and self.imp.done == self.imp.layout.level_start(level):
            self.seen[level] = (synced(self.model), self.imp.masks())


class After(keras.callbacks.Callback):  # listed after: every step's zeros, and the weights right after each event
    def __init__(self, imp):
        super().__init__()
        self.imp, self.rewound, self.bad, self.steps, self.masks = imp, {}, 0, 0, {}

    def on_train_batch_begin(self, batch, logs=None):
        event = self.imp.events[-1] if self.imp.events else None
        if event and event["step"] == self.imp.done and event["level"] not in self.rewound:
            weights, masks = synced(self.model), self.imp.masks()
            self.masks[event["level"]] = masks
            self.rewound[event["level"]] = all(np.array_equal(weights[k], self.imp.rewind_weights[k] * masks[k])
                                               for k in masks)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        weights, masks = synced(self.model), self.imp.masks()
        self.bad += sum(int(np.count_nonzero(weights[k][~m])) for k, m in masks.items())


results = {"backend": keras.backend.backend()}
cases = (("adam", lambda: keras.optimizers.Adam(1e-3), "0it"),
         ("sgd_momentum", lambda: keras.optimizers.SGD(0.05, momentum=0.9), "4it"),
         ("adamw", lambda: keras.optimizers.AdamW(1e-3, weight_decay=0.1), "0it"))
for name, optimizer, rewind in cases:
    model = translate(models.lenet_300_100((28, 28, 1), 10, seed=3), to=3)
    init = get_weights(model)
    imp = Keras3IMP(LEVEL_STEPS, LEVELS, pruning={"dense_rate": 0.2, "output_rate": 0.2}, rewind=rewind)
    before, after = Before(imp), After(imp)
    model.compile(optimizer(), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    steps = imp.total_steps()
    history = model.fit(x[:50 * steps], y[:50 * steps], batch_size=50, epochs=1, shuffle=False, verbose=0,
                        callbacks=[before, imp, after])
    drawn = {}
    for level, (weights, masks) in before.seen.items():
        expected = imp.strategy.prune(weights, masks, imp.plan[level])
        drawn[level] = all(np.array_equal(after.masks[level][k], expected[k]) for k in expected)
    kept = init if rewind == "0it" else None
    results[name] = {
        "steps": after.steps, "total": steps, "nonzero_pruned": after.bad,
        "events": [[e["step"], round(e["remaining"], 3)] for e in imp.events],
        "hidden": [[round(float(after.masks[lv][k].mean()), 3) for k in ("fc1/kernel", "fc2/kernel")] for lv in (1, 2, 3)],
        "rewound": all(after.rewound.values()) and len(after.rewound) == LEVELS,
        "drawn_as_find": all(drawn.values()) and len(drawn) == LEVELS,
        "rewind_is_init": kept is None or all(np.array_equal(imp.rewind_weights[k], init[k]) for k in init),
        "imp_level": history.history["imp_level"][-1], "imp_remaining": round(history.history["imp_remaining"][-1], 4),
    }
    if name == "adam":
        from tflottery.config import DataConfig
        from tflottery.data import load

        export_ticket(imp, out=f"{out}/ticket", data=load(DataConfig(dataset="mnist", validation=400), batch_size=50))
        np.save(f"{out}/keras3_logits.npy", keras.ops.convert_to_numpy(model(x_test)))
        np.save(f"{out}/x_test.npy", x_test)
        again = load_ticket(f"{out}/ticket", keras=3)
        results["reloaded_diff"] = float(np.abs(keras.ops.convert_to_numpy(again(x_test)) - keras.ops.convert_to_numpy(model(x_test))).max())
print(json.dumps(results))
'''


def fit_in(backend: str, where) -> dict:
    env = {"KERAS_BACKEND": backend, "PATH": "/usr/bin:/bin", "HOME": str(where)}
    done = subprocess.run([sys.executable, "-c", FIT, str(LEVEL_STEPS), str(LEVELS), str(where)], capture_output=True,
                          text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_keras3_imp_in_a_users_fit_prunes_rewinds_keeps_zeros_and_exports_a_ticket(tmp_path, backend):
    if backend != "tensorflow" and importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed: pip install 'tflottery[{backend}]'")
    out = fit_in(backend, tmp_path)
    assert out["backend"] == backend
    for name, rewind_step in (("adam", 0), ("sgd_momentum", 4), ("adamw", 0)):
        case = out[name]
        starts = [LEVEL_STEPS + (lv - 1) * (LEVEL_STEPS - rewind_step) for lv in (1, 2, 3)]
        assert case["steps"] == case["total"] == LEVEL_STEPS + LEVELS * (LEVEL_STEPS - rewind_step), name
        assert case["nonzero_pruned"] == 0, name
        assert case["events"] == [[s, r] for s, r in zip(starts, (0.8, 0.64, 0.512))], name
        assert case["hidden"] == [[0.8, 0.8], [0.64, 0.64], [0.512, 0.512]], name
        assert case["rewound"] and case["drawn_as_find"] and case["rewind_is_init"], name
        assert case["imp_level"] == 3 and case["imp_remaining"] == pytest.approx(0.512, abs=1e-3), name
    assert out["reloaded_diff"] == 0.0

    from tflottery import convert, load_ticket, read_ticket
    import tensorflow as tf

    ticket, x = tmp_path / "ticket", np.load(tmp_path / "x_test.npy")
    keras3_logits = np.load(tmp_path / "keras3_logits.npy")
    in_tf_keras = load_ticket(ticket)
    assert np.abs(in_tf_keras(x).numpy() - keras3_logits).max() < (1e-6 if backend == "tensorflow" else 1e-4)
    plain = tf.saved_model.load(str(ticket / "saved_model"))
    logits = plain.signatures["serving_default"](tf.constant(x))
    logits = next(iter(logits.values())).numpy()
    assert np.abs(logits - keras3_logits).max() < (1e-6 if backend == "tensorflow" else 1e-4)
    masks = read_ticket(ticket).masks
    assert [round(float(masks[k].mean()), 3) for k in ("fc1/kernel", "fc2/kernel", "output/kernel")] == [0.512] * 3
    if backend == "jax":  # a ticket found on JAX ships to LiteRT through the same checks as any
        report = convert(ticket, modes=["sparse"], out=tmp_path / "tflite")
        assert (tmp_path / "tflite" / "sparse.tflite").exists(), report


SEQUENCE_FIT = r'''
import json, sys
import numpy as np
import keras
from tflottery import Keras3IMP
from tflottery.pruning.keras3 import masks_of
from tflottery.models.keras3 import weight_variables


class Tokens(keras.Model):  # a subclassed Keras 3 model: Embedding, attention, LSTM, Dense
    def __init__(self):
        super().__init__(name="tokens")
        self.embed = keras.layers.Embedding(30, 8, name="embed")
        self.mha = keras.layers.MultiHeadAttention(2, 4, name="mha")
        self.lstm = keras.layers.LSTM(6, name="lstm")
        self.out = keras.layers.Dense(3, name="output")

    def call(self, x):
        h = self.embed(x)
        return self.out(self.lstm(self.mha(h, h)))


def functional():
    inputs = keras.Input((10,), dtype="int32")
    x = keras.layers.Embedding(30, 8, name="embed")(inputs)
    x = keras.layers.MultiHeadAttention(2, 4, name="mha")(x, x)
    x = keras.layers.LSTM(6, name="lstm")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="output")(x), name="seq")


out = {"backend": keras.backend.backend()}
for form, build in (("functional", functional), ("subclassed", Tokens)):
    keras.utils.set_random_seed(0)
    model = build()
    model(np.zeros((1, 10), "int32"))
    imp, zeros = Keras3IMP(6, 2), []

    class Check(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if hasattr(self.model, "jax_state_sync"):
                self.model.jax_state_sync()
            masks = masks_of(self.model)
            variables = {k: np.asarray(v) for k, v in weight_variables(self.model).items()}
            zeros.append((len(masks), all(not variables[k][~m].any() for k, m in masks.items())))

    model.compile(keras.optimizers.AdamW(0.05, weight_decay=0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 30, (4 * imp.total_steps(), 10)), rng.integers(0, 3, 4 * imp.total_steps())
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[imp, Check()])
    masks = imp.masks()
    out[form] = {"targets": list(masks), "counts_match": {k: int(m.sum()) for k, m in masks.items()} == imp.plan[2],
                 "zeros": all(z for _, z in zeros), "masked_after_level_1": min(n for n, _ in zeros[6:]),
                 "steps": len(zeros)}
    if form == "subclassed":  # a weights-only ticket, filled into the user's own class
        from tflottery import export_ticket, load_ticket, read_ticket

        ticket = export_ticket(imp, out=sys.argv[1] + "/ticket")
        filled = load_ticket(ticket, model=Tokens)
        filled.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        diff = float(np.abs(keras.ops.convert_to_numpy(filled(x[:8])) - keras.ops.convert_to_numpy(model(x[:8]))).max())
        filled.fit(x[:16], y[:16], batch_size=4, epochs=1, verbose=0)
        if hasattr(filled, "jax_state_sync"):
            filled.jax_state_sync()
        now = {k: np.asarray(v) for k, v in weight_variables(filled).items()}
        out["ticket"] = {"diff": diff, "weights_only": "weights_only" in read_ticket(ticket).meta,
                         "zeros_after_fit": all(not now[k][~m].any() for k, m in masks.items())}
print(json.dumps(out))
'''


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_keras3_imp_prunes_attention_and_recurrent_kernels_of_functional_and_subclassed_models(tmp_path, backend):
    """Embedding, MultiHeadAttention's four projections and an LSTM's kernels under AdamW, in a Functional and a
    subclassed Keras 3 model: every target masked at the plan's exact counts, zeros after every step; the subclassed
    model's weights-only ticket fills the user's class with the same logits and keeps its zeros in a fit (find_ticket
    with a subclassed Keras 3 model: test_keras3_subclassed_find.py)."""
    if backend != "tensorflow" and importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed: pip install 'tflottery[{backend}]'")
    import os

    done = subprocess.run([sys.executable, "-c", SEQUENCE_FIT, str(tmp_path)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "KERAS_BACKEND": backend})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend
    for form in ("functional", "subclassed"):
        case = out[form]
        assert case["targets"] == ["embed/embeddings", "mha/query/kernel", "mha/key/kernel", "mha/value/kernel",
                                   "mha/attention_output/kernel", "lstm/lstm_cell/kernel",
                                   "lstm/lstm_cell/recurrent_kernel", "output/kernel"], form
        assert case["counts_match"] and case["zeros"] and case["masked_after_level_1"] == 8, form
        assert case["steps"] == 18, form
    assert out["ticket"] == {"diff": 0.0, "weights_only": True, "zeros_after_fit": True}
