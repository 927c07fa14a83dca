"""The verdict of a run: what its replicates show, with 95% intervals, and one line that says it.

Per level and branch: the mean and t interval over replicates of the early-stop test accuracy
(Frankle & Carbin's measure: test accuracy at the iteration of minimum validation loss), the
final test accuracy and the early-stop iteration. Per pruned level: the paired differences (by
replicate, which shares the initialisation and data order; see `tflottery.core.stats`) ticket -
dense, ticket - reinit and ticket - random_prune. The line names the sparsest level at which the
ticket

* matches dense, an equivalence statement with a stated margin: the 95% interval of the paired
  difference ticket - dense lies above -margin (default 1 point), and
* beats both baselines: the 95% interval of each paired difference lies above zero,

or says that no level does, and why. With fewer than 3 replicates there is no verdict, only the
numbers: two replicates give a t interval with one degree of freedom (12.7 standard errors wide),
under which "matches" would hold for almost anything. The line names its criterion and n.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from tflottery.core.names import TICKET
from tflottery.core.stats import interval, paired
from tflottery.engine.branches import controls

METRICS = {"early_stop_test_accuracy": ("early-stop test acc %", 100.0),
           "final_test_accuracy": ("final test acc %", 100.0),
           "early_stop_step": ("early-stop iteration", 1.0)}
BASELINES = controls()  # the branch kinds marked `control` (reinit, random_prune)
MEASURE = "early_stop_test_accuracy"
MARGIN = 0.01  # matches dense: the paired interval of ticket - dense lies above -MARGIN (1 point of accuracy)
MIN_REPLICATES = 3  # fewer give the numbers and no verdict
DENSE = "dense"  # the paired difference ticket - dense (level 0's ticket of the same replicate)


@dataclass
class Verdict:
    rows: list = field(default_factory=list)  # per level and branch: remaining, n, an Interval per metric
    differences: list = field(default_factory=list)  # per level and baseline: the paired Interval
    line: str = ""
    level: Optional[int] = None  # the sparsest level the line names, or None
    margin: float = MARGIN

    def criterion(self) -> str:
        return (f"matches dense: the paired ticket - dense 95% interval lies above -{100 * self.margin:g} points; "
                f"beats a baseline: its paired 95% interval lies above 0; at least {MIN_REPLICATES} replicates")

    def to_dict(self) -> dict:
        return {"measure": MEASURE, "confidence": 0.95, "verdict": self.line, "level": self.level,
                "criterion": self.criterion(), "margin": self.margin, "min_replicates": MIN_REPLICATES,
                "levels": [{**{k: v for k, v in r.items() if k not in METRICS},
                            **{k: r[k].to_dict() for k in METRICS if r.get(k)}} for r in self.rows],
                "paired": [{"level": d["level"], "baseline": d["baseline"], "ticket_minus_baseline": d["interval"].to_dict()}
                           for d in self.differences]}

    def table_rows(self) -> list[dict]:
        """Flat rows for results.csv: <metric>_mean, _low, _high (accuracies as fractions)."""
        out = []
        for r in self.rows:
            row = {"level": r["level"], "branch": r["branch"], "remaining": r["remaining"],
                   "remaining_of_all": r["remaining_of_all"], "n": r["n"]}
            for key in METRICS:
                i = r.get(key)
                row.update({f"{key}_mean": i and i.mean, f"{key}_low": i and i.low, f"{key}_high": i and i.high})
            out.append(row)
        return out

    def text(self) -> str:
        """The table and the verdict, for a terminal or report.md (markdown)."""
        head = ["level", "remaining % (of all)", "branch", "n", *(label for label, _ in METRICS.values())]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
        for r in self.rows:
            of_all = f" ({100 * r['remaining_of_all']:.1f})" if r.get("remaining_of_all") is not None else ""
            cells = [str(r["level"]), f"{100 * r['remaining']:.1f}{of_all}", r["branch"], str(r["n"])]
            cells += [r[k].text(scale, 2 if scale > 1 else 0) if r.get(k) else "–" for k, (_, scale) in METRICS.items()]
            lines.append("| " + " | ".join(cells) + " |")
        if self.differences:
            lines += ["", "| level | ticket - baseline (early-stop test acc, points) | n |", "|---:|---:|---:|"]
            for d in self.differences:
                lines.append(f"| {d['level']} | {d['baseline']}: {d['interval'].text(100.0)} | {d['interval'].n} |")
        return "\n".join(lines + ["", f"**Verdict:** {self.line}", "",
                                  "Remaining: of the pruned variables' weights (in brackets: of every trainable "
                                  "weight). Means ± the half-width of the 95% t interval over replicates; differences "
                                  f"paired by replicate. Criterion: {self.criterion()}."])


def verdict(summary: list[dict], margin: float = MARGIN) -> Verdict:
    """The verdict of a run's summary rows (`RunStore.summary()`: one per replicate, level and branch); `margin`:
    how far below dense (a fraction of accuracy, paired interval) a ticket may reach and still match it."""
    from tflottery.core.values import as_float

    margin = as_float(margin, "margin", 0.0, 0.5, hint="a fraction of accuracy, e.g. 0.01 for 1 point.")
    cells: dict = {}
    for row in summary:
        cells.setdefault((row["level"], row["branch"]), {})[row["replicate"]] = row
    out = Verdict(margin=margin)
    for (level, branch), by_rep in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1] != TICKET, kv[0][1])):
        first = next(iter(by_rep.values()))
        entry = {"level": level, "branch": branch, "remaining": first["remaining"],
                 "remaining_of_all": first.get("remaining_of_all"), "n": len(by_rep)}
        for key in METRICS:
            values = [r[key] for r in by_rep.values() if r.get(key) is not None]
            entry[key] = interval(values) if values else None
        out.rows.append(entry)
    accuracy = {cell: {rep: r[MEASURE] for rep, r in by_rep.items() if r.get(MEASURE) is not None}
                for cell, by_rep in cells.items()}
    dense = accuracy.get((0, TICKET), {})
    for level in sorted({lvl for lvl, b in cells if b == TICKET and lvl > 0}):
        for baseline, theirs in ((DENSE, dense), *((b, accuracy.get((level, b))) for b in BASELINES)):
            if theirs:
                diff = paired(accuracy[(level, TICKET)], theirs)
                if diff is not None:
                    out.differences.append({"level": level, "baseline": baseline, "interval": diff})
    out.line, out.level = _line(out, cells)
    return out


def _line(out: Verdict, cells: dict) -> "tuple[str, Optional[int]]":
    rows = {(r["level"], r["branch"]): r for r in out.rows}
    dense = rows.get((0, TICKET), {}).get(MEASURE)
    pruned = sorted((r for r in out.rows if r["branch"] == TICKET and r["level"] > 0 and r.get(MEASURE)),
                    key=lambda r: r["remaining"])
    if dense is None or not pruned:
        return "no verdict: the run has no dense level and pruned ticket to compare yet.", None
    n = min([dense.n] + [r[MEASURE].n for r in pruned])
    if n < MIN_REPLICATES:
        return (f"no verdict: n={n}: a verdict needs at least {MIN_REPLICATES} replicates (with {n} the 95% interval "
                f"{'does not exist' if n < 2 else 'is 12.7 standard errors wide'}, and 'matches dense' would hold for "
                f"almost anything); the numbers above are all there is. Run --replicates={MIN_REPLICATES} or more "
                "(the finished replicates are kept) and `tflottery summary` again."), None
    diffs = {(d["level"], d["baseline"]): d["interval"] for d in out.differences}
    margin = 100 * out.margin

    def matches(r) -> bool:
        diff = diffs.get((r["level"], DENSE))
        return diff is not None and diff.above(-out.margin)

    baselines = [b for b in BASELINES if any(br == b for _, br in cells)]
    for r in pruned:  # sparsest first
        if not matches(r):
            continue
        beaten = [b for b in baselines if (r["level"], b) in diffs and diffs[(r["level"], b)].above(0)]
        if baselines and len(beaten) == len(BASELINES):
            against = " and ".join(f"{b} by {diffs[(r['level'], b)].text(100.0)} points" for b in BASELINES)
            return (f"level {r['level']} ({100 * r['remaining']:.1f}% of weights remain) is the sparsest winning "
                    f"ticket: {r[MEASURE].text(100.0)}% against dense {dense.text(100.0)}%, ticket - dense "
                    f"{diffs[(r['level'], DENSE)].text(100.0)} points (above -{margin:g}: matches dense), beating "
                    f"{against} (paired by replicate, 95%, n={n})."), r["level"]
    matching = [r for r in pruned if matches(r)]
    if not matching:
        densest = pruned[-1]
        gap = diffs[(densest["level"], DENSE)]
        wide = " (above dense in the mean; its interval reaches below the margin: more replicates can settle it)" \
            if gap.mean > 0 else ""
        return (f"no level matches dense (paired ticket - dense 95% interval above -{margin:g} points, n={n}): the "
                f"densest pruned ticket, level {densest['level']}, is {'+' if gap.mean > 0 else ''}"
                f"{gap.text(100.0)} points from dense{wide}."), None
    sparsest = matching[0]
    where = f"level {sparsest['level']} ({100 * sparsest['remaining']:.1f}% remain)"
    if len(baselines) < len(BASELINES):
        missing = ",".join(b for b in BASELINES if b not in baselines)
        return (f"no winning ticket can be named: {where} matches dense (paired ticket - dense above -{margin:g} "
                f"points, n={n}), but the run has no {missing} baseline to tell it from a random subnetwork. Add "
                "--branches=reinit,random_prune (the trained levels are kept)."), None
    short = [f"{b} {diffs[(sparsest['level'], b)].text(100.0)}" for b in BASELINES
             if (sparsest["level"], b) in diffs and not diffs[(sparsest["level"], b)].above(0)]
    return (f"no level: the tickets that match dense (paired ticket - dense above -{margin:g} points, n={n}) do not "
            f"beat both baselines beyond their intervals (at {where}, ticket - "
            f"{', '.join(short) or 'a baseline missing'} points)."), None
