"""What the Keras 3 trainer does not train yet is refused before any work, each with the tf_keras way."""
import pytest

from tflottery import plan_ticket
from tflottery.core.errors import ConfigError


@pytest.mark.parametrize("config,message", [
    ({"plan": {"branches": ["supermask"]}}, "branch supermask \\(trains scores"),
    ({"plan": {"branches": ["reinit", "rigl"]}}, "branch rigl \\(rewires masks"),
    ({"pruning": {"rewind": "auto"}}, "--rewind=auto"),
    ({"pruning": {"strategy": "early_bird", "early_bird_fallback": True}, "plan": {"target_remaining": 0.5}}, "--strategy=early_bird"),
    ({"training": {"tensorboard": True}}, "--tensorboard"),
])
def test_what_keras3_does_not_train_yet_is_refused_with_the_tf_keras_way(config, message, in_tmp):
    config = {**config, "data": {"dataset": "mnist", "validation": 400},
              "training": {**config.get("training", {}), "keras": 3}}
    with pytest.raises(ConfigError, match=f"--keras=3 does not train {message}.* leave --keras unset"):
        plan_ticket(config)
    assert not (in_tmp / "runs").exists()


def test_a_keras3_dry_run_names_a_run_of_its_own(in_tmp):
    data = {"dataset": "mnist", "validation": 400}
    tf_keras = plan_ticket({"data": data}).run_dir
    keras3 = plan_ticket({"data": data, "training": {"keras": 3, "backend": "jax"}}).run_dir
    assert tf_keras != keras3 and tf_keras.parent == keras3.parent


def test_a_model_with_dropout_is_refused_on_keras3(in_tmp):
    from tflottery.core.keras_compat import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Dropout(0.5, name="drop")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, name="out")(keras.layers.Dense(20, name="fc")(x)), name="m")
    with pytest.raises(ConfigError, match="random numbers \\(drop: their streams are not seeded"):
        plan_ticket({"data": {"dataset": "mnist", "validation": 400}, "training": {"keras": 3}}, model=model)
