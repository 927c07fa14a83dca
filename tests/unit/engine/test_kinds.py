"""Kinds own their settings: branches with typed parameters, resolved from plain config, keys stable."""
import hashlib
import json

import pytest

from tflottery.config import RunConfig
from tflottery.core.errors import ConfigError
from tflottery.engine.branches import Copy, Supermask, Transfer
from tflottery.engine.resolve import resolve


def test_a_branch_at_its_defaults_keeps_its_plain_name_and_parameters_hash_into_the_key():
    assert Supermask().key() == "supermask" and Supermask({"init": "signed_constant"}).key() == "supermask"
    custom = Supermask({"init": "init"})
    digest = hashlib.sha256(json.dumps({"init": "init"}, sort_keys=True).encode()).hexdigest()[:10]
    assert custom.key() == f"supermask-{digest}" and custom.param_values() == {"init": "init"}


def test_copies_keep_their_0_2_keys():
    copy = Copy(rewind_step=500, copy=1)
    params = {"rewind_step": 500, "copy": 1, "order": 1}
    assert copy.key() == "copy-" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    assert Copy(rewind_step=500, copy=1, order=0).key() != copy.key()


def test_branches_and_their_parameters_come_from_plain_config_as_the_cli_gives_them():
    config = RunConfig.from_dict({"plan": {"branches": ["reinit", {"supermask": {"init": "init"}}, "random_prune"]}})
    branches = resolve(config).branches
    assert [b.kind for b in branches] == ["ticket", "reinit", "supermask", "random_prune"]
    assert branches[2].params.init == "init"


@pytest.mark.parametrize("branches,message", [
    (["shuffle"], "per-level branches are reinit, random_prune, supermask"),
    (["transfer"], "transfer runs with `tflottery transfer`"),
    ([{"supermask": {"init": "zeros"}}], "supermask init='zeros': use one of"),
    ([{"supermask": {"inits": "init"}}], r"branch supermask: unknown field\(s\) \['inits'\]"),
    ([{"supermask": "init"}], "the parameters of 'supermask' must be a mapping"),
    (["reinit", "reinit"], "names a branch twice"),
])
def test_bad_branches_are_one_clear_error(branches, message):
    with pytest.raises(ConfigError, match=message):
        resolve(RunConfig.from_dict({"plan": {"branches": branches}}))


def test_required_parameters_are_named():
    with pytest.raises(ConfigError, match=r"branch transfer: missing field\(s\) \['data', 'training'\]"):
        Transfer()
    with pytest.raises(ConfigError, match="transfer init='both'"):
        Transfer(data={}, training={}, init="both")
