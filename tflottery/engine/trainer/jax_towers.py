"""Keras 3 on JAX: a group of K units trained as one jitted program of K towers, each exactly as it trains alone.

Each unit is a tower: its own weights, optimizer state, mask and batches, the step of Keras 3's
`Layer.stateless_call` and `Optimizer.stateless_apply` applied to it; the program holds the K
towers side by side and nothing crosses between them. A tower's ops are the ops of the program
of one unit, so a unit trained in a group of K is the unit trained alone, bit for bit (the
tests check it). `jax.vmap` would batch the K units' matrix products into one, which XLA on a
CPU computes with another kernel from K = 7 or 8 on (measured: 2e-7 apart after 10 steps), so a
run's bytes would depend on its grouping: towers, not vmap.

The training set lives on the device once; a step receives the K units' batch indices (its
seeded order, as every trainer reads it) and gathers and rescales the images inside the
program, and `lax.scan` runs up to `steps_per_execution` steps per call. Masks are state, not
constants, so one compiled program serves every level.
"""
from __future__ import annotations

import time

import numpy as np

from tflottery.engine.trainer.base import Tally, UnitResult
from tflottery.engine.trainer.fit import LevelResult


class JaxTowers:
    """Trains groups of units of one Keras 3 `model` (on JAX) with `make_optimizer(start_step)`."""

    def __init__(self, keras, model, prune: list, chunk: int):
        import jax

        self.keras, self.jax, self.model, self.prune, self.chunk = keras, jax, model, set(prune), max(1, int(chunk))
        from tflottery.models.keras3 import weight_variables

        names = {id(v): k for k, v in weight_variables(model).items()}
        # a random generator's state (an LSTM's SeedGenerator) is no weight: it starts every unit at the model's value
        self.generators = {f"state:{v.path}": np.asarray(v) for v in model.non_trainable_variables if id(v) not in names}
        names.update({id(v): f"state:{v.path}" for v in model.non_trainable_variables if id(v) not in names})
        self.trainable = [names[id(v)] for v in model.trainable_variables]
        self.non_trainable = [names[id(v)] for v in model.non_trainable_variables]
        self.masked = [i for i, k in enumerate(self.trainable) if self._pruned(k)]
        self.loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.mode = _mode_argument(model)
        self._programs: dict = {}
        self._images: dict = {}

    def _pruned(self, key: str) -> bool:
        """Whether weight `key` is masked: a target path, or the kernel of a layer named (older payloads)."""
        return key in self.prune or (key.endswith("/kernel") and key.split("/")[0] in self.prune)

    # ------------------------------------------------------------------ the program
    def _program(self, optimizer, units: int, steps: int, divisor: float):
        """The jitted function of `steps` steps of `units` towers (one per optimizer, group size, length and the
        data's divisor: 255 for uint8 images, 1 for token ids and a user's arrays)."""
        key = (id(optimizer), units, steps, divisor)
        if key in self._programs:
            return self._programs[key]
        jax, jnp, model, loss_fn, masked, mode = self.jax, self.jax.numpy, self.model, self.loss, self.masked, self.mode

        def tower_step(state, images, labels, index):
            trainable, non_trainable, slots, masks, loss_sum, correct = state
            x = images[index].astype("float32") / divisor
            y = labels[index]

            def objective(weights):
                logits, updated = model.stateless_call(weights, non_trainable, x, **mode(True))
                return loss_fn(y, logits), (logits, updated)

            (loss, (logits, non_trainable)), grads = jax.value_and_grad(objective, has_aux=True)(trainable)
            trainable, slots = optimizer.stateless_apply(slots, grads, trainable)
            trainable = list(trainable)
            for i, m in zip(masked, masks):  # the TicketMask constraint: pruned weights exactly zero
                trainable[i] = trainable[i] * m
            hits = jnp.sum((jnp.argmax(logits, axis=-1) == y).astype("float32"))
            return (trainable, non_trainable, slots, masks, loss_sum + loss, correct + hits)

        def run(states, images, labels, indices):  # indices: (steps, units, batch)
            def body(states, step_indices):
                return [tower_step(states[c], images, labels, step_indices[c]) for c in range(units)], None

            states, _ = jax.lax.scan(body, states, indices)
            return states

        self._programs[key] = jax.jit(run, donate_argnums=(0,))
        return self._programs[key]

    def _forward(self, units: int):
        key = ("forward", units)
        if key not in self._programs:
            model, mode = self.model, self.mode

            def forward(weights, images):
                return [model.stateless_call(w[0], w[1], images, **mode(False))[0] for w in weights]

            self._programs[key] = self.jax.jit(forward)
        return self._programs[key]

    def _device_data(self, data):
        if id(data) not in self._images:  # the Data is kept with its arrays, so its id is never another's
            images, labels = data.arrays["train"]
            self._images[id(data)] = (data, self.jax.device_put(images), self.jax.device_put(labels.astype(np.int32)))
        return self._images[id(data)][1:]

    # ------------------------------------------------------------------ a group
    def train(self, units: list, optimizer, slots: list) -> list[UnitResult]:
        """Train `units` (same data, training and step range) from their starts; `slots`: the optimizer's
        fresh state (zeros), copied to every tower."""
        from tflottery.data import batch_indices

        jnp = self.jax.numpy
        first = units[0]
        data, begin, end = first.data, first.start.start_step, first.start.end_step
        every = first.steps.eval_every
        evals = set(range(begin + every, end, every)) | {end}
        kept = set().union(*(u.start.captures for u in units))
        kept = {c for c in kept if begin < c <= end}
        started = []
        for unit in units:
            weights = dict(unit.weights())
            for k, mask in unit.start.masks.items():
                if self._pruned(k):
                    weights[k] = weights[k] * mask
            started.append(weights)
        states = self.states(started, [u.start.masks for u in units], slots)
        orders = [batch_indices(data.num_train, data.batch_size, u.seed("data_order"), begin, end) for u in units]
        indices = np.stack(orders, axis=1)  # (steps, units, batch)
        results, began = [LevelResult() for _ in units], time.perf_counter()
        self._record(results, states, begin, data, None)
        position = begin
        for point in sorted(evals | kept):
            states = self.run_steps(optimizer, states, data, indices[position - begin:point - begin])
            n = point - position
            if point in kept:
                for unit, result, state in zip(units, results, states):
                    if point in unit.start.captures:
                        result.captured[point] = self._weights(state)
            if point in evals:
                train = [(float(s[4]) / n, float(s[5]) / (n * data.batch_size)) for s in states]
                self._record(results, states, point, data, train)
            states = [(*s[:4], jnp.float32(0.0), jnp.float32(0.0)) for s in states]
            position = point
        wall = (time.perf_counter() - began) / len(units)
        out = []
        for unit, result, state, start in zip(units, results, states, started):
            result.wall_time_s = wall
            out.append(UnitResult(unit.start.masks, start, self._weights(state), result))
        return out

    def states(self, weights: list, masks: list, slots: list) -> list:
        """The towers' starting state: each unit's (masked) weights, its mask, fresh optimizer state, zero tallies."""
        jnp = self.jax.numpy
        return [([jnp.asarray(w[k]) for k in self.trainable],
                 [jnp.asarray(self.value(w, k)) for k in self.non_trainable], [jnp.asarray(s) for s in slots],
                 [jnp.asarray(np.asarray(m[self.trainable[i]], np.float32)) for i in self.masked],
                 jnp.float32(0.0), jnp.float32(0.0)) for w, m in zip(weights, masks)]

    def run_steps(self, optimizer, states: list, data, indices: np.ndarray) -> list:
        """The towers after the steps of `indices` ((steps, units, batch) example indices), `chunk` steps a call."""
        images, labels = self._device_data(data)
        for a in range(0, len(indices), self.chunk):
            part = indices[a:a + self.chunk]
            states = self._program(optimizer, len(states), len(part), float(data.divisor))(states, images, labels, part)
        return states

    def value(self, weights: dict, key: str):
        """A non-trainable variable's starting value: the unit's weight, or a generator's state."""
        return self.generators[key] if key in self.generators else weights[key]

    def _weights(self, state) -> dict:
        trainable, non_trainable = state[0], state[1]
        return {**{k: np.asarray(v) for k, v in zip(self.trainable, trainable)},
                **{k: np.asarray(v) for k, v in zip(self.non_trainable, non_trainable) if k not in self.generators}}

    def _record(self, results: list, states: list, step: int, data, train) -> None:
        rows = [{"step": step} for _ in results]
        if train is not None:
            for row, (loss, accuracy) in zip(rows, train):
                row.update(train_loss=loss, train_accuracy=accuracy)
        for row, numbers in zip(rows, self.evaluate([(s[0], s[1]) for s in states], data)):
            row.update(numbers)
        for result, row in zip(results, rows):
            result.history.append(row)

    def evaluate(self, weights: list, data) -> list[dict]:
        """Per unit ((trainable, non-trainable) values): val_ and test_ loss and accuracy, as every trainer tallies."""
        rows = [{} for _ in weights]
        forward = self._forward(len(weights))
        for prefix, dataset in (("val", data.validation), ("test", data.test)):
            if dataset is None:
                continue
            tallies = [Tally() for _ in weights]
            for images, labels in dataset:
                y = labels.numpy()
                for tally, logits in zip(tallies, forward(weights, images.numpy())):
                    tally.add(np.asarray(logits), y)
            for row, tally in zip(rows, tallies):
                row.update({f"{prefix}_{k}": v for k, v in tally.result().items()})
        return rows


def _mode_argument(model):
    """training=... for `stateless_call`, which passes it to the model's own `call`: only where that takes it (a
    subclassed model's `call(self, x)` does not)."""
    import inspect

    parameters = inspect.signature(model.call).parameters
    takes = "training" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    return (lambda training: {"training": training}) if takes else (lambda training: {})
