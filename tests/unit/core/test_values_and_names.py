"""The foundation: steps, strict values, safe path components, seeds pinned."""
import pytest

from tflottery.core import values
from tflottery.core.errors import ConfigError
from tflottery.core.names import printable, safe_component, storage_key, weight_key
from tflottery.core.seeds import derive_seed
from tflottery.core.steps import Step


@pytest.mark.parametrize("text,steps", [("500it", 500), ("2ep", 200), ("1ep100it", 200), ("0it", 0), (7, 7)])
def test_step_strings(text, steps):
    assert Step.parse(text).to_steps(100) == steps


@pytest.mark.parametrize("text", ["", "ep", "5", "2 epochs", "1it2ep"])
def test_bad_step_strings_name_the_format(text):
    with pytest.raises(ConfigError, match="500it"):
        Step.parse(text)


@pytest.mark.parametrize("value", ["maybe", "nope", 2, -1, None, 0.5, [], "tru"])
def test_a_boolean_that_is_not_true_or_false_is_refused(value):
    with pytest.raises(ConfigError, match="overwrite=.* must be true or false"):
        values.as_bool(value, "overwrite")


def test_switches_that_turn_safety_off_take_only_a_literal_true():
    assert values.as_literal_true(True, "trust_code") and values.as_literal_true("true", "trust_code")
    assert not values.as_literal_true("false", "trust_code") and not values.as_literal_true(False, "trust_code")
    for word in ("yes", "1", 1, "maybe"):
        with pytest.raises(ConfigError, match="trust_code=.* must be exactly true or false"):
            values.as_literal_true(word, "trust_code")


def test_numbers_are_checked_for_type_finiteness_and_range():
    assert values.as_int(3.0, "levels", 0, 10) == 3
    for bad, message in ((2.5, "whole number"), (True, "integer"), ("3", "integer"), (11, r"\[0, 10\]")):
        with pytest.raises(ConfigError, match=message):
            values.as_int(bad, "levels", 0, 10)
    with pytest.raises(ConfigError, match="finite"):
        values.as_float(float("nan"), "lr")


@pytest.mark.parametrize("name", ["../escaped", "a/b", "..", ".hidden", "", "x" * 121, "tab\there", "\x1b[31mred",
                                  "a\\b", "null\x00"])
def test_a_name_that_would_leave_its_folder_is_refused(name):
    with pytest.raises(ConfigError, match="cannot name a file or folder"):
        safe_component(name, "model.name")


def test_safe_names_pass_and_printed_names_are_escaped():
    assert safe_component("lenet_300_100-v2.1", "model.name") == "lenet_300_100-v2.1"
    assert printable("\x1b[31mred\udc80") == "'\\x1b[31mred\\udc80'"
    assert weight_key(storage_key("fc1/kernel")) == "fc1/kernel" and storage_key("fc1/kernel") == "fc1__kernel"


def test_derive_seed_values_are_pinned():  # an edit here would silently change every run's batches and inits
    assert derive_seed(0, 0, None, None, "init") == 492195915
    assert derive_seed(0, 2, 7, "reinit", "init") == 1210246363
    assert derive_seed(3, 1, 4, "ticket", "data_order") == 1687901430
    assert derive_seed(0, 0, 1, "random_prune", "mask") == 1906414985
