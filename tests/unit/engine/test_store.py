"""The store: the only writer of a run's layout, read back exactly; no TensorFlow needed."""
import numpy as np
import pytest

from tflottery.core.errors import ConfigError, RunError
from tflottery.engine.store import LevelRecord, RunStore


def _record(level, seed=0, branch="ticket"):
    rng = np.random.default_rng(seed)
    masks = {"fc1/kernel": rng.random((4, 3)) < 0.5}
    weights = {"fc1/kernel": rng.normal(size=(4, 3)).astype(np.float32), "fc1/bias": np.zeros(3, np.float32)}
    metrics = {"level": level, "replicate": seed, "branch": branch, "remaining": 0.5, "early_stop_step": 10, "early_stop_test_accuracy": 0.9,
               "final_test_accuracy": 0.91, "final_test_loss": 0.3, "wall_time_s": 1.0,
               "history": [{"step": 0, "test_accuracy": 0.1}, {"step": 10, "test_accuracy": 0.91}]}
    return LevelRecord(masks, weights, weights, metrics)


def test_levels_round_trip_and_metrics_mark_them_finished(tmp_path):
    store = RunStore(tmp_path / "run")
    store.write_spec({"seed": 0})
    rep = store.replicate(0)
    record = _record(1)
    rep.save_level(1, "ticket", record, meta={"kind": "ticket", "params": {}}, model_json='{"a": 1}',
                   data_info={"dataset": "x"})
    again = rep.load_level(1)
    assert np.array_equal(again.masks["fc1/kernel"], record.masks["fc1/kernel"]) and again.masks["fc1/kernel"].dtype == bool
    assert again.metrics == record.metrics and rep.levels() == [1] and rep.is_done(1)
    assert rep.branch_meta(1, "ticket") == {"kind": "ticket", "params": {}}
    (rep.level_dir(1) / "manifest.json").unlink()  # no manifest, the commit record: not finished, never read
    assert not rep.is_done(1) and rep.levels() == []
    with pytest.raises(RunError, match="is not finished"):
        rep.load_level(1)


def _cut(path, size):
    path.write_bytes(path.read_bytes()[:size])


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, named", [
    (lambda d: (d / "final.npz").unlink(), "final.npz is missing"),
    (lambda d: _cut(d / "masks.npz", 100), "masks.npz is not the file its unit wrote (100 bytes"),
    (lambda d: _flip(d / "start.npz"), "start.npz is not the file its unit wrote"),
    (lambda d: _cut(d / "metrics.json", 40), "metrics.json is not the file its unit wrote (40 bytes"),
    (lambda d: _cut(d / "manifest.json", 30), "manifest.json is not a unit's manifest"),
])
def test_a_damaged_unit_is_named_in_one_line_never_read_as_finished_and_can_train_again(tmp_path, damage, named):
    from tflottery.core.errors import DamagedError

    store = RunStore(tmp_path / "run")
    store.write_spec({"seed": 0})
    rep = store.replicate(0)
    for level in (0, 1):
        rep.save_level(level, "ticket", _record(level))
    assert store.damaged() == [] and rep.damage(1) is None
    damage(rep.level_dir(1))
    fresh = RunStore(tmp_path / "run").replicate(0)  # another process: nothing verified yet
    assert named in fresh.damage(1) and "\n" not in fresh.damage(1)
    assert [(r, level, branch) for r, level, branch, _ in RunStore(tmp_path / "run").damaged()] == [(0, 1, "ticket")]
    for read in (fresh.load_level, fresh.metrics):
        with pytest.raises(DamagedError, match="replicate 0, level 1, ticket is damaged; `tflottery find`"):
            read(1)
    fresh.load_level(0)  # the undamaged unit still reads
    fresh.uncommit(1, "ticket")
    assert not fresh.is_done(1) and fresh.levels() == [0]


def test_a_run_of_layout_2_keeps_its_finished_units_without_manifests(tmp_path):
    import json

    store = RunStore(tmp_path / "run")
    store.write_spec({"seed": 0})
    store.replicate(0).save_level(0, "ticket", _record(0))
    (store.replicate(0).level_dir(0) / "manifest.json").unlink()
    spec = json.loads((store.path / "spec.json").read_text())
    (store.path / "spec.json").write_text(json.dumps({**spec, "layout": 2}))
    old = RunStore.open(store.path)
    assert old.legacy and old.replicate(0).is_done(0) and old.replicate(0).load_level(0).metrics["level"] == 0
    (store.path / "spec.json").write_text(json.dumps({**spec, "layout": 4, "tflottery": "9.0"}))
    with pytest.raises(RunError, match=r"layout 4 \(written by tflottery 9.0\); this tflottery .* reads layouts 2, 3"):
        RunStore.open(store.path)


def test_truncated_json_anywhere_in_a_run_is_one_line_naming_the_file(tmp_path):
    from tflottery.core.errors import DamagedError

    store = RunStore(tmp_path / "run")
    store.write_spec({"seed": 0})
    _cut(store.path / "spec.json", 20)
    with pytest.raises(DamagedError, match="spec.json is not valid JSON .*cut short or altered"):
        RunStore.open(store.path)


def test_summary_captures_the_rewind_choice_and_analyses(tmp_path):
    store = RunStore(tmp_path / "run")
    for r in (0, 1):
        for level in (0, 1):
            for branch in (["ticket"] if level == 0 else ["ticket", "reinit"]):
                store.replicate(r).save_level(level, branch, _record(level, r, branch))
    rows = store.summary()
    assert [(row["replicate"], row["level"], row["branch"]) for row in rows] == [
        (0, 0, "ticket"), (0, 1, "ticket"), (0, 1, "reinit"), (1, 0, "ticket"), (1, 1, "ticket"), (1, 1, "reinit")]
    rep = store.replicate(0)
    rep.save_capture(500, {"fc1/kernel": np.ones((2, 2), np.float32)})
    assert rep.captured_steps() == [500] and rep.load_capture(500)["fc1/kernel"].sum() == 4
    assert rep.rewind_choice() is None
    rep.save_rewind_choice({"step": 100, "stable": True})
    assert rep.rewind_choice()["step"] == 100
    rep.save_analysis(1, "instability", "step_0-abc", {"instability": 0.5})
    assert rep.load_analysis(1, "instability", "step_0-abc")["instability"] == 0.5
    assert [(level, a["instability"]) for level, a in rep.analyses("instability")] == [(1, 0.5)]
    assert store.write_results().read_text().splitlines()[0].startswith("replicate,level,branch")


def test_a_branch_or_analysis_name_never_becomes_a_path_outside_its_level(tmp_path):
    rep = RunStore(tmp_path / "run").replicate(0)
    for bad in ("../../replicate_0/level_2/ticket", "a/b", ".."):
        with pytest.raises(ConfigError, match="cannot name a file or folder"):
            rep.level_dir(1, bad)
        with pytest.raises(ConfigError, match="cannot name a file or folder"):
            rep.analysis_path(1, "instability", bad)
    assert not (tmp_path / "run").exists()


def test_a_record_that_is_not_where_it_says_it_belongs_is_refused(tmp_path):
    store = RunStore(tmp_path / "run")
    store.replicate(0).save_level(2, "reinit", _record(1, 0, "ticket"))  # another level's record, planted here
    with pytest.raises(RunError, match="is not the record of replicate 0, level 2, branch reinit"):
        store.summary()


def test_a_symlinked_replicate_or_level_is_refused_in_one_line(tmp_path):
    from tflottery.core.errors import StorageError

    elsewhere = tmp_path / "elsewhere"
    RunStore(elsewhere).replicate(0).save_level(0, "ticket", _record(0))
    store = RunStore(tmp_path / "shared" / "run")
    store.write_spec({"seed": 0})
    (store.path / "replicate_0").symlink_to(elsewhere / "replicate_0", target_is_directory=True)
    with pytest.raises(StorageError, match="replicate_0 is a symbolic link"):
        store.summary()
    with pytest.raises(StorageError, match="replicate_0 is a symbolic link"):
        store.replicate(0).save_level(1, "ticket", _record(1))


def test_another_identity_under_the_same_name_is_refused(tmp_path):
    store = RunStore(tmp_path / "run")
    store.write_spec({"seed": 0})
    store.write_spec({"seed": 0})  # the same run: fine
    with pytest.raises(RunError, match="holds another run"):
        store.write_spec({"seed": 1})


def test_a_unit_verified_once_is_not_read_again_until_a_file_of_it_changes(tmp_path, monkeypatch):
    import os

    from tflottery.engine import store as store_lib

    store = RunStore(tmp_path / "run")
    store.write_spec({"seed": 0})
    rep = store.replicate(0)
    for level in (0, 1, 2):
        rep.save_level(level, "ticket", _record(level))
    reads = []
    real = store_lib.read_bytes
    monkeypatch.setattr(store_lib, "read_bytes", lambda path, *a, **k: (reads.append(path.name), real(path, *a, **k))[1])
    monkeypatch.setattr(store_lib, "_VERIFIED", set())  # another process: it trusts the writer's stamps
    assert RunStore(tmp_path / "run").damaged() == []
    assert [name for name in reads if name.endswith((".npz", ".csv"))] == []  # stamps and stats only
    reads.clear()
    final = rep.level_dir(2) / "final.npz"
    before = final.stat()
    _flip(final)
    os.utime(final, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same size and time: only the change time moved
    damaged = RunStore(tmp_path / "run").damaged()
    assert [(level, "final.npz is not the file its unit wrote" in problem) for _, level, _, problem in damaged] == \
        [(2, True)]
    reads.clear()
    RunStore(tmp_path / "run").damaged(full=True)  # `tflottery verify`: every file read
    assert reads.count("final.npz") == 3 and reads.count("masks.npz") == 2  # level 2 stops at its damaged file
