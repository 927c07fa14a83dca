"""report.md: what ran, on what data, the table of numbers and the figures, for a person to read."""
from __future__ import annotations

from pathlib import Path

from tflottery.core.files import atomic_write


def markdown_table(rows: list[dict], columns: dict) -> str:
    """`columns`: {key: (header, format)}; values that are None print as '–'."""
    head = "| " + " | ".join(h for h, _ in columns.values()) + " |"
    rule = "|" + "|".join("---:" for _ in columns) + "|"
    body = ["| " + " | ".join("–" if row.get(k) is None else fmt.format(row[k]) for k, (_, fmt) in columns.items())
            + " |" for row in rows]
    return "\n".join([head, rule, *body])


def write_report(out_dir: "str | Path", title: str, what: str, data: dict, table: str, figures: dict,
                 notes: str = "") -> Path:
    """Write `out_dir/report.md`; `figures` maps a caption to a PNG path inside `out_dir`."""
    out_dir = Path(out_dir)
    sizes = ", ".join(f"{k} {v:,}" for k, v in data.get("sizes", {}).items())
    lines = [f"# {title}", "", what, "",
             f"**Data:** `{data.get('dataset')}` from `{data.get('source')}` ({sizes}); "
             f"preprocessing {data.get('preprocessing')}.", "", "## Results", "", table, ""]
    for caption, path in figures.items():
        lines += [f"### {caption}", "", f"![{caption}]({Path(path).name})", ""]
    if notes:
        lines += ["## Notes", "", notes, ""]
    return atomic_write(out_dir / "report.md", "\n".join(lines).encode())
