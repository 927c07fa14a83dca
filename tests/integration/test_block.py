"""Block-structured IMP and the TFLite kernels that actually run: masks of whole blocks, a per-op report, LiteRT checks."""
import numpy as np
import pytest

from helpers import tiny_config, zeros_outside
from tflottery.deploy.converter import convert_checked, converter_blob
from tflottery.deploy.verify import interpreter, op_report
from tflottery import find_ticket, plan_ticket
from tflottery.core.errors import ConfigError, ConversionError
from tflottery.engine.resolve import check
from tflottery.core.keras_compat import keras


def _blocks(mask: np.ndarray, inputs: int) -> bool:
    """Every group of `inputs` consecutive inputs (Keras rows) of one output is all kept or all pruned."""
    groups = mask.reshape(mask.shape[0] // inputs, inputs, -1)
    return bool((groups == groups[:, :1, :]).all())


@pytest.mark.slow
@pytest.mark.parametrize("strategy,extra", [("layerwise", {}), ("global", {}),
                                            ("layerwise", {"block": [1, 16], "unstructured": ["fc2", "output"]})])
def test_block_masks_are_whole_blocks_at_every_level(in_tmp, sample_data, strategy, extra):
    structure = {"block": [1, 4], **extra}
    run = find_ticket(tiny_config(levels=3, strategy=strategy, structure=structure), data=sample_data)
    width = structure["block"][1]
    rep, previous = run.replicate(0), None
    for level in range(4):
        record = rep.load_level(level)
        for name, mask in record.masks.items():
            if name.split("/")[0] not in extra.get("unstructured", []):
                assert _blocks(mask, width), (level, name)
        assert zeros_outside(record.final, record.masks)
        if previous is not None:
            assert all(np.all(record.masks[k] <= previous[k]) for k in previous)
        assert sum(int(m.sum()) for m in record.masks.values()) == sum(run.plan.rows[level].values())
        previous = record.masks
    assert rep.metrics(3)["remaining"] == pytest.approx(0.512, abs=0.01)


def _dense_model():
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(32, activation="relu", name="fc")(inputs)
    return keras.Model(inputs, keras.layers.Dense(8, name="out")(hidden), name="two")


def test_the_op_report_tells_a_delegated_dense_fc_from_a_builtin_sparse_one():
    model = _dense_model()
    dense = op_report(converter_blob(model, "float", None))
    assert [(r["kind"], r["weights"], r["kernel"]) for r in dense] == [
        ("FULLY_CONNECTED", "dense", "XNNPACK (dense)"), ("FULLY_CONNECTED", "dense", "XNNPACK (dense)")]
    kernel = model.get_layer("fc").kernel
    keep = np.random.default_rng(0).random((16, 32)) < 0.2
    kernel.assign(kernel.numpy() * np.repeat(keep, 4, axis=0))  # 1x4 blocks of inputs, TFLite's float kernel
    sparse = op_report(converter_blob(model, "sparse", None))
    assert sparse[0]["weights"] == "sparse, blocks 1x4" and sparse[0]["kernel"] == "builtin sparse"


def test_a_sparse_int8_file_that_liteRT_computes_wrongly_is_rebuilt_dense():
    inputs = keras.Input((300,))  # 300 inputs: not a multiple of 16 (docs/litert_sparse_int8.md)
    model = keras.Model(inputs, keras.layers.Dense(64, use_bias=False, name="fc")(inputs))
    rng = np.random.default_rng(0)
    keep = np.repeat(rng.random((19, 64)) < 0.2, 16, axis=0)[:300]
    model.get_layer("fc").kernel.assign(rng.normal(size=(300, 64)).astype(np.float32) * keep)
    x = rng.random((256, 300)).astype(np.float32)
    blob, notes = convert_checked(model, "int8", x[:64], x)
    assert notes and "disagreed with the same file densely encoded" in notes[0]
    assert all(r["weights"] == "dense" for r in op_report(blob) if r["weights"] != "-")


@pytest.mark.slow
def test_block_modes_convert_a_block_ticket_and_every_file_loads(tmp_path, sample_data, capsys):
    from tflottery import convert, export_ticket

    config = tiny_config(levels=3, strategy="global", structure={"block": [1, 4]})
    config.runs_dir = str(tmp_path / "runs")
    ticket = export_ticket(find_ticket(config, data=sample_data), 3, tmp_path / "ticket")
    report = convert(ticket, modes=["float", "int8"], block_sparse=True, in_process=True)
    assert list(report["files"]) == ["float", "int8", "block_float"]  # 1x4 blocks: no 1x16 int8 file
    assert "block_int8 skipped (its kernel needs 1x16 blocks" in capsys.readouterr().out
    for mode, record in report["files"].items():
        interpreter(record["file"])  # loads in the default interpreter, XNNPACK and all
        assert record["ok"] and record["latency_ms"] > 0 and record["latency_ms_builtin"] > 0
        assert record["faster"] in ("default", "builtin", "either")
    block = report["files"]["block_float"]
    assert block["sparse_kernel"] and any(op["weights"] == "sparse, blocks 1x4" for op in block["ops"])
    assert [op["layer"] for op in block["ops"] if op["kind"] == "FULLY_CONNECTED"] == ["fc1", "fc2", "output"]
    assert not report["files"]["float"]["sparse_kernel"]
    with pytest.raises(ConversionError, match="not made of 1x16 blocks in any layer"):
        convert(ticket, modes=["block_int8"], in_process=True)


@pytest.mark.slow
def test_bad_block_requests(in_tmp, sample_data, caplog):
    with pytest.raises(ConfigError, match="does not divide layer fc2 .* \"unstructured\": \\[\"fc2\"\\]"):
        plan_ticket(tiny_config(structure={"block": [1, 16]}), data=sample_data)
    with pytest.raises(ConfigError, match="must be two positive sizes"):
        check(tiny_config(structure={"block": [4]}))
    with pytest.raises(ConfigError, match="blocks are a structure now"):
        check(tiny_config(block_shape=[1, 4]))
    plan = plan_ticket(tiny_config(structure={"block": [2, 2]}), data=sample_data)
    assert "no speed-up" in plan.table()  # allowed, with a warning that says why
    import logging

    with caplog.at_level(logging.WARNING, logger="tflottery"):
        find_ticket(tiny_config(levels=1, structure={"block": [2, 2]}), data=sample_data)
    assert any("none for 2x2" in r.message for r in caplog.records)


@pytest.mark.slow
def test_a_non_block_ticket_in_a_block_mode_is_refused(tmp_path, tiny_run):
    from helpers import export_tiny_ticket
    from tflottery import convert

    ticket, _ = export_tiny_ticket(tmp_path, tiny_run, 1)
    with pytest.raises(ConversionError, match="Mode block_float runs TFLite's 1x4 sparse kernel, but this ticket's "
                                              "masks are not made of 1x4 blocks"):
        convert(ticket, modes=["block_float"])


@pytest.mark.slow
def test_a_two_of_four_ticket_loads_checked_refuses_a_broken_group_and_says_litert_runs_it_dense(tmp_path, sample_data):
    from helpers import resign
    from tflottery import convert, export_ticket, load_ticket
    from tflottery.core.errors import TicketError

    config = tiny_config(levels=2, strategy="global", structure={"n": 2, "m": 4})
    config.runs_dir = str(tmp_path / "runs")
    run = find_ticket(config, data=sample_data)
    ticket = export_ticket(run, 2, tmp_path / "ticket")
    model = load_ticket(ticket)
    assert model is not None
    report = convert(ticket, modes="float,sparse")
    assert any("LiteRT has no N:M kernel" in note for note in report["files"]["sparse"]["notes"])
    import numpy as np

    masks = {k: v.copy() for k, v in np.load(ticket / "masks.npz").items()}
    arrays = {name: {k: v.copy() for k, v in np.load(ticket / name).items()} for name in ("weights.npz", "rewind.npz")}
    key = next(k for k in masks if k.startswith("fc2"))
    added = int((~masks[key][:4, 0]).sum())
    masks[key][:4, 0] = True  # four of four inputs of one output: no longer 2:4 ...
    off = np.argwhere(masks[key][4:, 1:])[:added] + [4, 1]  # ... with as many dropped elsewhere: the same counts
    for row, col in off:
        masks[key][row, col] = False
        for weights in arrays.values():
            weights[key][row, col] = 0
    np.savez(ticket / "masks.npz", **masks)
    for name, weights in arrays.items():
        np.savez(ticket / name, **weights)
    resign(ticket)
    with pytest.raises(TicketError, match=r"break the ticket's structure .*re-export it"):
        load_ticket(ticket)
