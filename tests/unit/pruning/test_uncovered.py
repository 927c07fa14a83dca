"""No layer skipped in silence: a model with weights no rule prunes is refused in one line naming each layer and the
way to leave it dense; left dense by name, it trains and the start line lists it."""
import pytest

from helpers import tiny_config
from tflottery import find_ticket
from tflottery.core.errors import ModelError
from tflottery.core.keras_compat import keras
from tflottery.pruning.wrap import uncovered


def lstm_model():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Reshape((28, 28))(inputs)
    x = keras.layers.LSTM(16, name="lstm")(x)
    x = keras.layers.LayerNormalization(name="norm")(x)  # a vector scale: never counted
    return keras.Model(inputs, keras.layers.Dense(10, name="output")(x), name="lstm_net")


def test_the_layers_with_weights_no_rule_prunes_are_named_with_their_weights():
    assert uncovered(lstm_model()) == {"lstm": "LSTM, 2,816 weights"}  # kernel 28x64 (1,792) + recurrent kernel 16x64 (1,024)


def test_an_lstm_model_is_refused_in_one_line_naming_the_layer_and_the_fix(in_tmp, sample_data):
    with pytest.raises(ModelError) as error:
        find_ticket(tiny_config(levels=1), model=lstm_model(), data=sample_data)
    assert "has weights no rule prunes: lstm (LSTM, 2,816 weights)" in str(error.value)
    assert "--unpruned='[\"lstm\"]'" in str(error.value) and "\n" not in str(error.value)
    assert not (in_tmp / "runs").exists()  # refused before any work


def test_left_dense_by_name_it_trains_and_the_start_line_lists_it(in_tmp, sample_data, capsys):
    import numpy as np

    config = tiny_config(levels=1)
    config.pruning.unpruned = ["lstm"]
    config.training.verbose = True
    run = find_ticket(config, model=lstm_model(), data=sample_data)
    assert "left dense: lstm (LSTM, 2,816 weights)" in capsys.readouterr().out
    record = run.replicate(0).load_level(1)
    assert list(record.masks) == ["output/kernel"]  # only the Dense layer carries a mask
    assert np.all(record.final["output/kernel"][~record.masks["output/kernel"]] == 0)
