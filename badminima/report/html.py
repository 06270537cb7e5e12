"""The report page: every experiment set recorded in an output directory, redrawn from its stored
records, as one self-contained HTML file (figures embedded as data URIs) beside the Markdown files.

Each set is labelled with what it ran on (dataset, model, width/depth, preset, seeds) and where it
came from (badminima version, git commit, torch, device, command line, date); the page also says
how it was built. Markdown becomes HTML through the `markdown` package (tables extension)."""
from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import markdown

from ..store import Store
from .tables import set_title

STYLE = ("body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
         "table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}td,th{border:1px solid #bbb;padding:.25rem .5rem}"
         "th{background:#eee}img{max-width:100%;height:auto;display:block;margin:1rem 0}"
         "dl.provenance{font-size:.8rem;color:#555;display:grid;grid-template-columns:max-content auto;gap:0 1rem}"
         "dl.provenance dd{margin:0;font-family:monospace}section{border-top:2px solid #ccc;margin-top:2rem}")
PROVENANCE_FIELDS = (("badminima_version", "badminima"), ("git_commit", "git commit"), ("torch_version", "torch"),
                     ("device", "device"), ("command", "command line"), ("date", "date (UTC)"))


def markdown_to_html(text: str) -> str:
    """Our reports' Markdown (headings, paragraphs, pipe tables with `\\|` escapes) as HTML; its `#` headings
    become <h3>, below the page's <h1> and each set's <h2>."""
    body = markdown.markdown(text, extensions=["tables"])
    return re.sub(r"<(/?)h([1-4])>", lambda m: f"<{m[1]}h{int(m[2]) + 2}>", body)


def provenance_html(prov: dict | None) -> str:
    if not prov:
        return '<p class="provenance">Provenance: not recorded (a record written before badminima kept it).</p>'
    rows = "".join(f"<dt>{name}</dt><dd>{html.escape(str(prov.get(key) if prov.get(key) is not None else '-'))}</dd>"
                   for key, name in PROVENANCE_FIELDS)
    return f'<dl class="provenance">{rows}</dl>'


def embed_png(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def measures_section(store: Store) -> str:
    """Every measure stored in the directory (`badminima measure`), in full, by run; empty if none."""
    from ..measures.command import in_percent, value_lines

    final_of = {}
    for run_id, phases in store.conn.execute("SELECT id, phases FROM runs ORDER BY rowid"):
        final_of.setdefault(json.loads(phases)[-1], run_id)
    rows = store.conn.execute("SELECT phase_id, name, value FROM measures ORDER BY phase_id, name").fetchall()
    if not rows:
        return ""
    cells = "".join(f"<tr><td>{html.escape(final_of.get(pid, '-'))}</td><td>{html.escape(pid)}</td>"
                    f"<td>{html.escape(name)}</td><td><pre>{html.escape(chr(10).join(value_lines(in_percent(json.loads(value)), '')))}"
                    f"</pre></td></tr>" for pid, name, value in rows)
    return ('\n<section id="measures"><h2>Measures of stored runs</h2><p>Computed by <code>badminima measure</code> '
            'on each run\'s final model (accuracies in percent).</p><table><tr><th>run</th><th>phase</th>'
            f"<th>measure</th><th>value</th></tr>{cells}</table></section>")


def set_section(entry: dict, paths: list[Path]) -> str:
    name = html.escape(entry["name"])
    parts = [f'<section id="{name}-{html.escape(entry["set_id"])}" class="experiment-set" data-experiment="{name}">',
             f"<h2>{name}: {html.escape(set_title(entry['label']))}</h2>",
             f"<p>Set {html.escape(entry['set_id'])}; {html.escape(entry['scale'])}. Accuracies in percent.</p>",
             provenance_html(entry.get("provenance"))]
    parts += [markdown_to_html(p.read_text()) for p in paths if p.suffix == ".md"]
    parts += [embed_png(p, p.stem) for p in paths if p.suffix == ".png"]
    parts += [f'<p>Records: {html.escape(str(p))}</p>' for p in paths if p.suffix == ".csv"]
    return "\n".join(parts) + "</section>"


def build_report(out: str | Path, provenance: dict | None = None) -> Path:
    """Redraw every experiment set stored in `out` and write out/report/index.html; `provenance`: of this build."""
    from ..experiments import get_experiment, render_set

    store = Store(out)
    sections = []
    for entry in store.experiments():
        paths = render_set(get_experiment(entry["name"]), store, entry["set_id"], entry["records"], entry["scale"])
        sections.append(set_section(entry, paths))
    body = "\n".join(sections) or "<p>No experiment has been run in this directory yet.</p>"
    body += measures_section(store)
    built = f"<p>This page was built by:</p>{provenance_html(provenance)}" if provenance else ""
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>badminima report</title>"
            f"<style>{STYLE}</style></head><body><h1>badminima report</h1>"
            f"<p>Output directory: {html.escape(str(store.dir))}</p>{built}\n{body}</body></html>\n")
    folder = store.dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "index.html"
    index.write_text(page)
    store.close()
    return index
