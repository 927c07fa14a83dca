import json
from pathlib import Path

import pytest

from tflottery.recipes.common import RECIPES, load_recipe, run_recipe

pytestmark = pytest.mark.slow

TINY = {"levels": 1, "steps": "20it", "eval_every": "10it", "steps_per_execution": 5, "validation": 300}


def _check_outputs(out: Path, results: dict, expect_figures: int):
    assert (out / "results.json").exists() and (out / "results.csv").exists() and (out / "report.md").exists()
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == expect_figures
    assert all(p.stat().st_size > 10_000 and p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    report = (out / "report.md").read_text()
    assert all(p.name in report for p in pngs) and "| level |" in report.replace("| source → target | level |", "| level |")
    saved = json.loads((out / "results.json").read_text())
    assert saved["device"] in ("CPU",) or saved["device"].startswith("GPU")
    for ticket in results["tickets"]:
        assert (Path(ticket) / "ticket.json").exists()
    return saved


@pytest.mark.parametrize("name,figures", [("task1", 4), ("task2", 4), ("task3", 8)])
def test_transfer_recipes_at_tiny_size(in_tmp, name, figures):
    results = run_recipe(name, verbose=False, **TINY)
    saved = _check_outputs(Path(results["output"]), results, figures)
    for row in saved["rows"]:
        for key in ("source", "transferred", "target_ticket", "transferred_reinit"):
            assert 0.0 <= row[key] <= 1.0
        assert row["transferred"] > 0.3  # far above chance on 5 or 10 classes after 20 steps
    assert len({r["pair"] for r in saved["rows"]}) == (2 if name == "task3" else 1)
    assert all(Path(t).parent.parent.name == "saved_tickets" for t in results["tickets"])


@pytest.mark.parametrize("name,extra", [("fc1_mnist", {}), ("lenet5_mnist", {}), ("lenet_mnist", {"replicates": 2}),
                                        ("conv_cifar10", {"source": "synthetic", "validation": 100, "replicates": 1})])
def test_imp_recipes_at_tiny_size(in_tmp, name, extra):
    results = run_recipe(name, verbose=False, **{**TINY, **extra})
    saved = _check_outputs(Path(results["output"]), results, 5)
    branches = {r["branch"] for r in saved["rows"]}
    assert "ticket" in branches and "reinit" in branches
    replicates = extra.get("replicates", 3)  # the recipes' default (conv4 at one: the slowest model here)
    assert len(saved["rows"]) == replicates * (1 + 1 * (len(branches)))
    assert all(0.0 <= r["early_stop_test_accuracy"] <= 1.0 for r in saved["rows"])
    assert saved["table"][1]["remaining"] < saved["table"][0]["remaining"] == 100.0


def test_paper_settings_and_flags():
    assert load_recipe("task2", paper=True)["run"]["training"]["steps"] == "50ep"
    assert load_recipe("task2", paper=True)["run"]["plan"]["levels"] == 15
    cfg = load_recipe("task2", overrides={"lr": 0.01, "target.data.labels": [5, 6]})
    assert cfg["run"]["training"]["lr"] == 0.01 and cfg["target"]["data"]["labels"] == [5, 6]
    assert load_recipe("lenet_mnist", paper=True)["run"]["plan"]["replicates"] == 5
    from tflottery.core.errors import ConfigError

    with pytest.raises(ConfigError, match="Unknown flag --epochs"):
        load_recipe("task1", overrides={"epochs": 3})
    assert set(RECIPES) == {p.stem for p in (Path(__file__).parents[2] / "recipes").glob("*.toml")}


def test_instability_recipe_at_tiny_size(in_tmp):
    results = run_recipe("instability", verbose=False, levels=1, steps="40it", eval_every="20it",
                         validation=300, dense_points=["0it", "10it"], sparse_points=["0it"], sparse_level=1,
                         alphas=4, steps_per_execution=5)
    out = Path(results["output"])
    assert (out / "report.md").exists() and len(list(out.glob("*.png"))) == 2
    assert [(r["network"], r["rewind_step"]) for r in results["rows"]] == [("dense", 0), ("dense", 10), ("IMP level 1", 0)]
    assert all(r["instability"] >= 0 and " ± " in r["instability_interval"] for r in results["rows"])  # 4 copies
    assert all(r["stable"] in ("stable", "unstable", "undecided") for r in results["rows"])


def test_early_bird_recipe_at_tiny_size(in_tmp):
    results = run_recipe("early_bird", verbose=False, steps="100it", eval_every="50it", validation=300,
                         targets=[0.3], every="10it", steps_per_execution=5)
    out = Path(results["output"])
    assert (out / "report.md").exists() and (out / "mask_distance.png").exists()
    row = results["rows"][0]
    assert row["remaining"] <= 30 and row["bird_steps"] < row["imp_steps"]
    assert row["drawn_epoch"] is not None and 0 < row["bird_accuracy"] <= 100


def test_supermask_recipe_at_tiny_size(in_tmp):
    results = run_recipe("supermask", verbose=False, **TINY)
    saved = _check_outputs(Path(results["output"]), results, 5)
    assert {r["branch"] for r in saved["rows"]} == {"ticket", "supermask"}
    assert all(r["signed_constant_accuracy"] is not None for r in saved["table"])


def test_deploy_recipe_at_tiny_size(in_tmp):
    results = run_recipe("deploy", verbose=False, levels=2, steps="40it", eval_every="20it", validation=300,
                         steps_per_execution=5)
    out = Path(results["output"])
    assert (out / "report.md").exists() and len(list((out / "tflite").glob("*.tflite"))) == 3
    modes = {r["mode"]: r for r in results["rows"]}
    assert set(modes) == {"float", "block_float", "int8"} and "builtin sparse" in modes["block_float"]["kernels"]
    assert "op 1 FULLY_CONNECTED: weights sparse, blocks 1x4, builtin sparse" in (out / "report.md").read_text()


def test_baselines_recipe_at_tiny_size(in_tmp):
    branches = load_recipe("baselines")["run"]["plan"]["branches"]
    quick = [{"synflow": {**b["synflow"], "rounds": 5}} if isinstance(b, dict) and "synflow" in b
             else {"synflow": {"rounds": 5}} if b == "synflow" else b for b in branches]  # SynFlow's rounds: 100 -> 5
    results = run_recipe("baselines", verbose=False, dataset="mnist", replicates=2, baseline_levels=[1],
                         branches=quick, **TINY)
    out = Path(results["output"])
    assert sorted(p.name for p in out.glob("*.png")) == ["ablations.png", "baselines.png"]
    methods = [row["method"].replace(" (rounds=5)", "").replace(" (samples_per_class=10)", "")
               for row in results["table"]]
    assert methods[:7] == ["IMP ticket (rewound)", "ticket mask, reinitialised", "random pruning", "SynFlow",
                           "magnitude at init", "SNIP", "GraSP"]
    assert {"ticket, inverted", "SNIP, shuffled", "SNIP, reinitialised", "SNIP, inverted", "GraSP, shuffled",
            "GraSP, reinitialised", "GraSP, inverted", "SynFlow, shuffled", "SynFlow, reinitialised",
            "SynFlow, inverted", "magnitude at init, shuffled", "magnitude at init, reinitialised"} <= set(methods)
    assert all(row["acc_1"] and "±" in row["acc_1"] for row in results["table"])  # 2 replicates: intervals
    assert all(row["diff_1"] for row in results["table"][1:])
    report = (out / "report.md").read_text()
    assert "| method |" in report and "**Verdict:**" in report and "global pruning" in report


def test_dst_recipe_at_tiny_size(in_tmp):
    results = run_recipe("dst", verbose=False, dataset="mnist", replicates=2, baseline_levels=[1], **TINY)
    methods = [row["method"] for row in results["table"]]
    assert methods == ["IMP ticket (rewound)"] + [f"{m} (density=erk{b})" for b in ("", ", steps_multiplier=2",
                                                                                    ", steps_multiplier=5")
                                                  for m in ("random pruning", "SET", "RigL")]
    assert all(row["acc_1"] and "±" in row["acc_1"] for row in results["table"])
    from tflottery.engine.store import RunStore

    replicate = RunStore.open(results["runs"][0]).replicate(0)
    ends = {b.split("-")[0] + str(replicate.metrics(1, b).get("end_step")): b for b in replicate.branches(1)}
    assert {"ticket20", "random_prune20", "set40", "rigl100"} <= set(ends)  # 1x, 2x, 5x the ticket's 20 steps

