"""Plain-text tables: Markdown for report files, aligned columns for the terminal, CSV for records."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from .labels import readable


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _markdown_cell(value) -> str:
    """A cell's text with `|` escaped (`||w||` would otherwise end the cell) and no line break."""
    return _cell(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A pipe table for the report files; record keys in the header read as words (report/labels.py)."""
    lines = ["| " + " | ".join(_markdown_cell(readable(h)) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_markdown_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def text_table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells) + "\n"


def records_csv(path: Path, records: list[dict]) -> Path:
    """An experiment's records as CSV, one row per record, the columns every key in first-seen order
    (accuracies in percent, as in the records); lists and dicts as JSON, None as an empty cell."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in records:
            writer.writerow(["" if r.get(k) is None else json.dumps(r[k]) if isinstance(r[k], (list, dict)) else r[k]
                             for k in columns])
    return path


def set_title(label: dict) -> str:
    """What an experiment set was run on, in one line: dataset, model, width/depth, preset, seeds, and the
    settings that differ from the preset."""
    if "dataset" not in label:
        return label.get("note", "unlabelled set")
    seeds = label["seeds"]
    parts = [f"{label['dataset']}" + (f" ({label['train_size']} training examples)" if label.get("train_size") else ""),
             f"{label['model']}, width {label['width'] or 'default'}, depth {label['depth'] or 'default'}",
             f"preset {label['preset']}",
             f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"]
    title = " / ".join(parts[:2]) + "; " + "; ".join(parts[2:])
    if label.get("changed"):
        title += "; changed from the preset: " + ", ".join(f"{k}={v}" for k, v in label["changed"].items())
    return title
