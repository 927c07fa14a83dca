"""Each tower's steps in a loop of its own train the bytes of the one summed step of all towers."""
import numpy as np
import pytest


def _population(units: int, optimizer: str = "adam", weight_decay: float = 0.0, dropout: bool = False,
                jit: bool = False, nesterov: bool = False):
    from tflottery.config import TrainingConfig
    from tflottery.core.keras_compat import keras
    from tflottery.engine.optim import compile_model, reset_optimizer
    from tflottery.engine.plan import training_steps
    from tflottery.engine.trainer.population import population_model

    keras.utils.set_random_seed(0)
    layers = [keras.layers.Flatten(input_shape=(28, 28, 1)), keras.layers.Dense(24, activation="relu", name="fc1"),
              keras.layers.BatchNormalization(name="bn")]  # its moving statistics update inside the loops too
    layers += [keras.layers.Dropout(0.2, name="drop")] if dropout else []
    base = keras.Sequential(layers + [keras.layers.Dense(10, name="output")])
    training = TrainingConfig(optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0, lr=1e-2,
                              nesterov=nesterov, weight_decay=weight_decay, steps_per_execution=5)
    model = compile_model(population_model(base, ["fc1", "output"], units), training,
                          training_steps(training, 100), with_loss=False, jit=jit)
    rng = np.random.default_rng(1)
    for c in range(units):
        weights = {k: rng.normal(size=v.shape).astype(np.float32) * 0.1 for k, v in model._weights_of[c].items()}
        weights["bn/moving_variance"] = np.abs(weights["bn/moving_variance"])
        masks = {k: rng.random(weights[k].shape) < 0.4 for k in ("fc1/kernel", "output/kernel")}
        model.set_tower(c, weights, masks)
    reset_optimizer(model, 3)  # the schedule's offset is read as the summed step reads it
    return model


def _train(model, summed: bool):
    from tflottery import data as data_lib
    from tflottery.config import DataConfig
    from tflottery.engine.trainer.population import PopulationData

    if summed:
        model._loops_towers = lambda: False
    population = PopulationData(data_lib.load(DataConfig(dataset="mnist"), batch_size=20), [5, 6])
    # 3 epochs of 7 steps and one of 12 at 5 steps a call: Keras cuts calls short at every epoch's end
    logs = model.fit(model.pipeline(population, 0, 21), epochs=3, steps_per_epoch=7, verbose=0).history
    logs.update(model.fit(model.pipeline(population, 21, 33), epochs=1, steps_per_epoch=12, verbose=0).history)
    return ([model.get_tower(c) for c in range(model.units)], logs,
            [np.asarray(v.numpy()) for v in model.optimizer.variables], int(model._train_counter.numpy()))


@pytest.mark.parametrize("optimizer", [dict(optimizer="adam"), dict(optimizer="sgd"),
                                       dict(optimizer="sgd", nesterov=True)])
def test_tower_loops_train_the_bytes_of_the_summed_step(optimizer):
    loops, summed = _population(2, **optimizer), _population(2, **optimizer)
    assert loops._loops_towers()
    (weights, logs, slots, counter), (weights_s, logs_s, slots_s, counter_s) = _train(loops, False), _train(summed, True)
    assert counter == counter_s == 12
    assert logs == logs_s
    assert len(slots) == len(slots_s) > 6
    assert all(np.array_equal(a, b) for a, b in zip(slots, slots_s))
    started = _population(2, **optimizer)
    for c in range(2):
        for name, value in weights[c].items():
            assert value.tobytes() == weights_s[c][name].tobytes(), (c, name)
        assert np.abs(weights[c]["fc1/kernel"] - started.get_tower(c)["fc1/kernel"]).max() > 1e-3  # it trained
        mask = loops.get_tower(c, "masks")["fc1/kernel"]
        assert not weights[c]["fc1/kernel"][~mask].any()  # pruned weights stay exactly zero


@pytest.mark.parametrize("change", [dict(weight_decay=1e-4), dict(optimizer="sgd", weight_decay=1e-4),
                                    dict(dropout=True), dict(jit=True)])
def test_the_summed_step_stays_where_a_tower_loop_is_not_proven_the_same(change):
    assert not _population(1, **change)._loops_towers()
