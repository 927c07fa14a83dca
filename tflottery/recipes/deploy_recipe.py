"""The deploy recipe: find a block ticket, convert it, verify and time every file, write the table and report."""
from __future__ import annotations

from pathlib import Path

from tflottery.deploy import convert
from tflottery.api import find_ticket
from tflottery.core.files import write_csv
from tflottery.recipes.settings import run_config
from tflottery.report import markdown_table, write_report
from tflottery.tickets import export_ticket


def run(name: str, cfg: dict, out: Path) -> dict:
    found = find_ticket(run_config(cfg))
    level = found.plan.levels[-1]
    ticket = export_ticket(found, level, Path(cfg["tickets_dir"]) / name / found.path.name, overwrite=True)
    report = convert(ticket, modes=list(cfg["modes"]), out=out / "tflite")
    dense = report["files"]["float"]
    rows = [{"mode": mode, "accuracy": None if r["accuracy"] is None else 100 * r["accuracy"],
             "agreement": 100 * r["top1_agreement"], "kb": r["bytes"] / 1024, "gz_kb": r["gzip_bytes"] / 1024,
             "default_us": 1000 * r["latency_ms"], "builtin_us": 1000 * r["latency_ms_builtin"],
             "speed": dense["latency_ms"] / min(r["latency_ms"], r["latency_ms_builtin"]),
             "run_with": {"builtin": "builtin kernels", "default": "default interpreter", "either": "either"}[r["faster"]],
             "kernels": ", ".join(sorted({op["kernel"] for op in r["ops"] if op["weights"] != "-"})),
             "ok": "yes" if r["ok"] else "rejected"} for mode, r in report["files"].items()]
    write_csv(out / "results.csv", rows)
    columns = {"mode": ("file", "{}"), "accuracy": ("accuracy %", "{:.2f}"), "agreement": ("agrees with Keras %", "{:.1f}"),
               "kb": ("KB", "{:.0f}"), "gz_kb": ("gzip KB", "{:.0f}"), "default_us": ("default us", "{:.1f}"),
               "builtin_us": ("builtin us", "{:.1f}"), "speed": ("speed vs dense float", "{:.2f}x"),
               "run_with": ("run it with", "{}"), "kernels": ("kernels", "{}"), "ok": ("ok", "{}")}
    ops = "\n".join(f"* `{mode}`: " + "; ".join(f"op {o['op']} {o['kind']}: weights {o['weights']}, {o['kernel']}"
                                                for o in r["ops"] if o["weights"] != "-")
                    + "".join(f" ({n})" for n in r["notes"]) for mode, r in report["files"].items())
    what = (f"{cfg['description']}\n\nTicket: level {level} ({100 * report['remaining']:.1f}% remaining) of "
            f"`{found.path.name}`, Keras test accuracy {100 * report['keras_accuracy']:.2f}%. Latency is the median "
            "time per example, batch 1, under the default interpreter (XNNPACK applied) and the builtin kernels "
            "without delegates (the sparse kernels).")
    write_report(out, f"{name}: a block ticket in LiteRT", what, found.data.describe(), markdown_table(rows, columns),
                 {}, notes="Which kernel runs each op:\n\n" + ops)
    return {"rows": rows, "runs": [str(found.path)], "tickets": [str(ticket)], "figures": [],
            "data": found.data.describe(), "convert": report}
