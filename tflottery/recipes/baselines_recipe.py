"""The baselines recipe: one run, the ticket and every baseline at chosen levels, a table with intervals and a figure."""
from __future__ import annotations

from pathlib import Path

from tflottery import plots
from tflottery.api import find_ticket, verdict
from tflottery.core.files import write_csv
from tflottery.core.stats import interval, paired
from tflottery.engine.resolve import resolve
from tflottery.core.names import TICKET
from tflottery.recipes.settings import run_config
from tflottery.report import markdown_table, write_report

ABLATED = {"shuffle": "shuffled", "reinit": "reinitialised", "invert": "inverted"}


def label(branch) -> str:
    """A branch as the table names it: 'SNIP', 'SNIP, inverted', 'RigL (steps_multiplier=5)'."""
    params = branch.param_values()
    name = branch.table_name()
    ablation = params.pop("ablation", None) or (branch.params.ablation if branch.kind == "ticket_ablation" else None)
    text = name + (f", {ABLATED[ablation]}" if ablation else "")
    return text + (f" ({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})" if params else "")


def family_styles(branches: list, keys: dict) -> dict:
    """A colour per method and a line and marker per ablation or budget, so that a method's variants read as its
    family."""
    kinds = list(dict.fromkeys("ticket" if b.kind == "ticket_ablation" else b.kind for b in branches))
    lines = {None: ("-", "o"), "shuffle": ("--", "s"), "reinit": ("-.", "D"), "invert": (":", "v"),
             2: ("--", "s"), 5: (":", "D")}
    out = {}
    for b in branches:
        kind = "ticket" if b.kind == "ticket_ablation" else b.kind
        ablation = getattr(b.params, "ablation", None)
        variant = ablation if ablation not in (None, "none") else getattr(b.params, "steps_multiplier", 1)
        line, marker = lines.get(variant, lines[None])
        out[keys[b.key()]] = dict(color=f"C{kinds.index(kind) % 10}", linestyle=line, marker=marker)
    return out


def method_table(rows: list[dict], keys: dict, levels: list[int]) -> list[dict]:
    """Per method (row) and level (columns): the early-stop test accuracy's mean ± 95% interval over replicates,
    and its paired difference from the ticket."""
    def accuracy(key, level):
        return {r["replicate"]: r["early_stop_test_accuracy"] for r in rows if r["branch"] == key and r["level"] == level}

    table = []
    for key, name in keys.items():
        row = {"method": name}
        for level in levels:
            mine = accuracy(key, level)
            row[f"acc_{level}"] = interval(list(mine.values())).text(100.0) if mine else None
            diff = paired(mine, accuracy(TICKET, level)) if key != TICKET else None
            row[f"diff_{level}"] = diff.text(100.0) if diff is not None else None
        table.append(row)
    return table


def run(name: str, cfg: dict, out: Path) -> dict:
    run_ = find_ticket(run_config(cfg))
    config = run_.config
    branches = resolve(config).branches
    keys = {b.key(): label(b) for b in branches}
    rows = [dict(row, run=run_.path.name) for row in run_.summary()]
    levels = sorted({r["level"] for r in rows if r["branch"] != TICKET})
    remaining = {lv: next(r["remaining"] for r in rows if r["level"] == lv) for lv in levels}
    table = method_table(rows, keys, levels)
    columns = {"method": ("method", "{}"),
               **{f"acc_{lv}": (f"{100 * remaining[lv]:.1f}% acc", "{}") for lv in levels},
               **{f"diff_{lv}": (f"{100 * remaining[lv]:.1f}%: - ticket", "{}") for lv in levels}}
    dense = [r["early_stop_test_accuracy"] for r in rows if r["level"] == 0]
    series = {name: [r for r in rows if r["branch"] == key and (key != TICKET or r["level"] > 0)]
              for key, name in keys.items()}
    replicates = config.plan.replicates
    title = f"{config.model.name} on {run_.data.info['dataset']}, {replicates} replicates"
    ablated = [b.key() for b in branches if b.kind == "ticket_ablation"
               or getattr(b.params, "ablation", "none") != "none"]
    main = [k for k in keys if k not in ablated or k.startswith("ticket_ablation")]
    sources = {b.kind for b in branches if b.key() in ablated}
    originals = [b.key() for b in branches if b.kind in sources and b.key() not in ablated]
    ablations = [k for k in keys if k in (TICKET, "random_prune") or k in originals] + ablated
    spread = plots.span_caption([replicates])
    styles = family_styles(branches, keys)
    figures = {f"The ticket against every baseline at the levels they train at. {spread}": plots.by_remaining(
        {keys[k]: series[keys[k]] for k in main}, out / "baselines.png", title=title, styles=styles,
        references={"dense": (dense, dict(color="k"))})}
    if len(ablated) > 1:
        figures[f"Frankle et al. 2021's ablations of the scored methods and the ticket. {spread}"] = plots.by_remaining(
            {keys[k]: series[keys[k]] for k in ablations}, out / "ablations.png", title=title, styles=styles,
            references={"dense": (dense, dict(color="k"))})
    write_csv(out / "results.csv", rows)
    t = config.training
    what = (f"`{config.model.name}` on {run_.data.info['dataset']}: IMP with {config.pruning.strategy} pruning "
            f"to level {run_.plan.levels[-1]}, {t.optimizer} lr {t.lr}, batch {t.batch_size}, {t.steps} per level, "
            f"rewind to {config.pruning.rewind}; every baseline at levels {levels} with the ticket's total sparsity "
            + ("(each scored method ranks every layer together with the run's global strategy, so it chooses its own "
               "per-layer proportions; random pruning and reinit keep the ticket's counts)"
               if config.pruning.strategy == "global" else "and its per-layer counts (layerwise: every method only "
               "chooses positions inside each layer)")
            + f" and the ticket's steps unless a branch says otherwise; {replicates} replicates. Early-stop test "
            "accuracy (%): mean ± the half-width of the 95% t interval over replicates; '- ticket': the paired "
            "difference from the ticket (points).")
    judged = verdict(run_)
    write_report(out, f"{name}: {title}", what, run_.data.describe(), markdown_table(table, columns), figures,
                 notes=f"Dense: {interval(dense).text(100.0)}. **Verdict:** {judged.line}")
    return {"rows": rows, "table": table, "runs": [str(run_.path)], "verdict": judged.to_dict(),
            "data": run_.data.describe(), "figures": [str(p) for p in figures.values()]}
