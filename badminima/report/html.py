"""The report page: every experiment recorded in an output directory, redrawn from its stored
records, as one self-contained HTML file (figures embedded as data URIs) beside the Markdown files."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from ..store import Store

STYLE = ("body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
         "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}td,th{border:1px solid #bbb;padding:.25rem .5rem}"
         "th{background:#eee}img{max-width:100%;height:auto;display:block;margin:1rem 0}")


def markdown_to_html(text: str) -> str:
    """The subset of Markdown our reports write: #/## headings, paragraphs and pipe tables."""
    out, table = [], []

    def flush_table():
        if table:
            rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table
                    if not set(line.replace("|", "").strip()) <= {"-", ":"}]
            head, body = rows[0], rows[1:]
            out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</table>")
            table.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("## "):
            out.append(f"<h3>{html.escape(line[3:])}</h3>")
        elif line.startswith("# "):
            out.append(f"<h2>{html.escape(line[2:])}</h2>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush_table()
    return "\n".join(out)


def embed_png(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def measures_section(store: Store) -> str:
    """Every measure stored in the directory (`badminima measure`), in full, by run; empty if none."""
    from ..measures.command import value_lines

    final_of = {}
    for run_id, phases in store.conn.execute("SELECT id, phases FROM runs ORDER BY rowid"):
        final_of.setdefault(json.loads(phases)[-1], run_id)
    rows = store.conn.execute("SELECT phase_id, name, value FROM measures ORDER BY phase_id, name").fetchall()
    if not rows:
        return ""
    cells = "".join(f"<tr><td>{html.escape(final_of.get(pid, '-'))}</td><td>{html.escape(pid)}</td>"
                    f"<td>{html.escape(name)}</td><td><pre>{html.escape(chr(10).join(value_lines(json.loads(value), '')))}"
                    f"</pre></td></tr>" for pid, name, value in rows)
    return ('\n<section id="measures"><h2>Measures of stored runs</h2><p>Computed by <code>badminima measure</code> '
            'on each run\'s final model (accuracies as fractions, as stored).</p><table><tr><th>run</th><th>phase</th>'
            f"<th>measure</th><th>value</th></tr>{cells}</table></section>")


def build_report(out: str | Path) -> Path:
    """Redraw every experiment stored in `out` and write out/report/index.html."""
    from ..experiments import get_experiment

    store = Store(out)
    folder = store.dir / "report"
    sections = []
    for entry in store.experiments():
        paths = get_experiment(entry["name"]).render(folder, store, entry["records"], entry["scale"])
        parts = [f'<section id="{html.escape(entry["name"])}">']
        for path in paths:
            if path.suffix == ".md":
                parts.append(markdown_to_html(path.read_text()))
        parts += [embed_png(p, p.stem) for p in paths if p.suffix == ".png"]
        sections.append("\n".join(parts) + "</section>")
    body = "\n".join(sections) or "<p>No experiment has been run in this directory yet.</p>"
    body += measures_section(store)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>badminima report</title>"
            f"<style>{STYLE}</style></head><body><h1>badminima report</h1>"
            f"<p>Output directory: {html.escape(str(store.dir))}</p>\n{body}</body></html>\n")
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "index.html"
    index.write_text(page)
    store.close()
    return index
