"""The public face: about twenty names a user needs at the top, the extension bases in `tflottery.extend`,
0.3's other top-level names still working for one release with a warning naming their new home."""
import warnings

import pytest

import tflottery
import tflottery.extend


def test_the_top_level_exports_the_verbs_the_configuration_tickets_and_the_own_fit_tools_and_they_load():
    assert 20 <= len(tflottery.__all__) <= 25
    assert {"find_ticket", "transfer", "load_ticket", "RunConfig", "prune_imp", "TflotteryError"} <= set(tflottery.__all__)
    for name in tflottery.__all__:
        assert getattr(tflottery, name) is not None


def test_extension_authors_find_every_base_and_register_in_extend():
    from tflottery.engine.branches import Branch, register
    from tflottery.engine.executors.base import Executor
    from tflottery.engine.trainer import Trainer

    assert tflottery.extend.Branch is Branch and tflottery.extend.register_branch is register
    assert tflottery.extend.Trainer is Trainer and tflottery.extend.Executor is Executor
    for name in tflottery.extend.__all__:
        assert getattr(tflottery.extend, name) is not None
    with pytest.raises(AttributeError):
        tflottery.extend.nosuch  # noqa: B018


@pytest.mark.parametrize("name, home", [("Branch", "tflottery.extend"), ("register_branch", "tflottery.extend"),
                                        ("DataConfig", "tflottery.config"), ("RunError", "tflottery.core.errors")])
def test_a_moved_name_still_works_with_a_warning_naming_its_home(name, home):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = getattr(tflottery, name)
    assert value is not None and name not in tflottery.__all__
    assert any(f"tflottery.{name} is now {home}.{name}" in str(w.message) for w in caught)


@pytest.mark.parametrize("module, old, new", [("tflottery", "EarlyBird", "tflottery.pruning.early_bird.EarlyBirdCallback"),
                                              ("tflottery.pruning.strategies", "EarlyBird",
                                               "tflottery.pruning.strategies.early_bird.EarlyBirdStrategy")])
def test_a_renamed_name_still_works_with_a_warning_naming_the_new_one(module, old, new):
    import importlib

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = getattr(importlib.import_module(module), old)
    home, name = new.rsplit(".", 1)
    assert value is getattr(importlib.import_module(home), name)
    assert any(f"{module}.{old} is now {new}" in str(w.message) for w in caught)


@pytest.mark.parametrize("old, new", [("tflottery.engine.imp", "tflottery.engine.loop"),
                                      ("tflottery.engine.supermask", "tflottery.engine.edge_popup")])
def test_a_renamed_module_still_imports_with_a_warning_naming_the_new_one(old, new):
    import subprocess
    import sys

    code = (f"import warnings; warnings.simplefilter('always')\nimport {old} as m, {new} as n\n"
            "assert all(getattr(m, k) is v for k, v in vars(n).items() if not k.startswith('_'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{old} is now {new}" in done.stderr


def test_find_ticket_dry_run_is_the_plan_and_writes_nothing(tmp_path, sample_data):
    plan = tflottery.find_ticket({"plan": {"levels": 2}, "runs_dir": str(tmp_path / "runs")}, data=sample_data,
                                 dry_run=True)
    assert plan.levels == [0, 1, 2] and plan.run_dir.parent == tmp_path / "runs" and not (tmp_path / "runs").exists()
