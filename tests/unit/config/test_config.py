"""Config: plain typed data, strict values, flags that find their section, help from the fields themselves."""
import pytest

from tflottery.config import (DataConfig, PlanConfig, PruningConfig, RunConfig, TrainingConfig, apply_flag,
                              describe_flags, merge_flags)
from tflottery.core.errors import ConfigError


@pytest.mark.parametrize("section,values,message", [
    (PruningConfig, {"rewind": "soon"}, "is not a step"),
    (PruningConfig, {"rewind_grid": ["0it"]}, "give it with --rewind=auto"),
    (PlanConfig, {"levels": -1}, r"levels=-1 must lie in \[0, 200\]"),
    (PlanConfig, {"levels": 2.5}, "must be a whole number"),
    (PlanConfig, {"levels": 3, "target_remaining": 0.1}, "not both"),
    (PlanConfig, {"branches": [3]}, "must be a branch name or"),
    (PlanConfig, {"replicates": 0}, r"replicates=0 must lie in \[1, 1000\]"),
    (PlanConfig, {"population": 0}, "must be auto or a number of units"),
    (PlanConfig, {"population": "many"}, "must be auto or a number of units"),
    (DataConfig, {"labels": []}, "fewer than 2 classes"),
    (DataConfig, {"labels": [3, 3]}, "repeats a class"),
    (DataConfig, {"fraction": 0.0}, r"must lie in \(0, 1\]"),
    (DataConfig, {"fraction": 1.5}, r"must lie in \(0, 1\]"),
    (DataConfig, {"data_dir": ""}, "data.data_dir is empty"),
    (TrainingConfig, {"optimizer": "rmsprop"}, "use adam or sgd"),
    (TrainingConfig, {"lr": float("inf")}, "must be a finite number"),
    (TrainingConfig, {"lr": "0.1"}, "must be a number"),
    (TrainingConfig, {"batch_size": 0}, "must be >= 1"),
    (TrainingConfig, {"momentum": 0.9}, "sgd only"),
    (TrainingConfig, {"eval_every": "0it"}, "never evaluates"),
    (TrainingConfig, {"jit_compile": "maybe"}, "must be auto, true or false"),
    (TrainingConfig, {"tensorboard": "maybe"}, "must be true or false"),
])
def test_bad_values_give_one_clear_error(section, values, message):
    with pytest.raises(ConfigError, match=message):
        section(**values).validate()


@pytest.mark.parametrize("word,value", [("false", False), ("no", False), ("0", False), (0, False), ("true", True),
                                        ("1", True), (1, True), (True, True)])
def test_booleans_are_true_or_false_and_words_mean_what_they_say(word, value):
    config = RunConfig.from_dict({"training": {"tensorboard": word}})
    assert config.training.tensorboard is value


def test_flags_find_their_section_and_the_rest_are_strategy_settings():
    tree = merge_flags({"levels": 3, "lr": 0.1, "dataset": "fashion_mnist", "model": "lenet5",
                        "training.steps": "2ep", "seed": 4, "dense_rate": 0.3})
    config = RunConfig.from_dict(tree)
    assert (config.plan.levels, config.training.lr, config.data.dataset) == (3, 0.1, "fashion_mnist")
    assert (config.model.name, config.training.steps, config.seed) == ("lenet5", "2ep", 4)
    assert config.pruning.settings == {"dense_rate": 0.3}
    with pytest.raises(ConfigError, match="Unknown flag --training.levls"):
        apply_flag({}, "training.levls", 3)


def test_help_comes_from_the_fields_with_their_defaults():
    text = describe_flags(["  settings of --strategy=global"])
    assert "  --dense_rate=" not in text  # settings are the resolver's, not config's
    assert "--steps_per_execution=50  (steps per compiled call (speed, not science))" in text
    assert "--population='auto'" in text and "settings of --strategy=global" in text
