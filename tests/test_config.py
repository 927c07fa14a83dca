import pytest

from tflottery.config import (ConfigError, DataConfig, PlanConfig, PruningConfig, RunConfig, Step, TrainingConfig,
                              apply_flag)


@pytest.mark.parametrize("text,steps", [("500it", 500), ("2ep", 200), ("1ep100it", 200), ("0it", 0), (7, 7)])
def test_step_strings(text, steps):
    assert Step.parse(text).to_steps(100) == steps


@pytest.mark.parametrize("text", ["", "ep", "5", "2 epochs", "1it2ep"])
def test_bad_step_strings_name_the_format(text):
    with pytest.raises(ConfigError, match="500it"):
        Step.parse(text)


@pytest.mark.parametrize("section,values,message", [
    (PruningConfig, {"dense_rate": 1.0}, r"dense_rate=1.0 must lie in \[0, 1\)"),
    (PruningConfig, {"conv_rate": -0.1}, r"conv_rate=-0.1 must lie"),
    (PruningConfig, {"strategy": "structured"}, "unknown: use layerwise or global"),
    (PruningConfig, {"rewind": "soon"}, "is not a step"),
    (PruningConfig, {"dense_rate": float("nan")}, "must be a finite number"),
    (PruningConfig, {"dense_rate": "0.2"}, "must be a number"),
    (PlanConfig, {"levels": -1}, r"levels=-1 must lie in \[0, 200\]"),
    (PlanConfig, {"levels": 2.5}, "must be a whole number"),
    (PlanConfig, {"levels": 3, "target_remaining": 0.1}, "not both"),
    (PlanConfig, {"branches": ["shuffle"]}, "per-level branches are reinit, random_prune"),
    (PlanConfig, {"replicates": 0}, r"replicates=0 must lie in \[1, 1000\]"),
    (DataConfig, {"labels": []}, "fewer than 2 classes"),
    (DataConfig, {"labels": [3, 3]}, "repeats a class"),
    (DataConfig, {"fraction": 0.0}, r"must lie in \(0, 1\]"),
    (DataConfig, {"fraction": 1.5}, r"must lie in \(0, 1\]"),
    (TrainingConfig, {"optimizer": "rmsprop"}, "use adam or sgd"),
    (TrainingConfig, {"lr": float("inf")}, "must be a finite number"),
    (TrainingConfig, {"batch_size": 0}, "must be >= 1"),
    (TrainingConfig, {"momentum": 0.9}, "sgd only"),
])
def test_bad_values_give_one_clear_error(section, values, message):
    with pytest.raises(ConfigError, match=message):
        section(**values).validate()


def test_flags_find_their_section():
    tree = {}
    for key, value in {"levels": 3, "lr": 0.1, "dataset": "fashion_mnist", "model": "lenet5",
                       "training.steps": "2ep", "seed": 4}.items():
        apply_flag(tree, key, value)
    config = RunConfig.from_dict(tree)
    assert (config.plan.levels, config.training.lr, config.data.dataset) == (3, 0.1, "fashion_mnist")
    assert (config.model.name, config.training.steps, config.seed) == ("lenet5", "2ep", 4)
    with pytest.raises(ConfigError, match="Unknown flag --levls"):
        apply_flag(tree, "levls", 3)
