"""The report page: every experiment set recorded in an output directory, redrawn from its stored
records, as one self-contained HTML file (figures embedded as data URIs) beside the Markdown files.

A table of contents leads to every experiment (numbered) and each of its sets. Each set is labelled with
what it ran on (dataset, model, width/depth, preset, seeds) and where it came from (badminima version, git
commit, torch, device, command line, date); every figure and table is numbered and captioned with that
scale, so that no CPU-scale number passes for a paper-scale one; the page ends with how it was built.
Markdown becomes HTML through the `markdown` package (tables extension)."""
from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import markdown

from ..store import Store
from ..store.db import measure_name_and_version
from .labels import readable
from .tables import set_title

PAGE_WIDTH_PX = 1152  # the text column; figures are drawn this wide (report/figures.py: PAGE_WIDTH x DPI)
STYLE = (f"body{{font-family:sans-serif;max-width:{PAGE_WIDTH_PX}px;margin:2rem auto;padding:0 1rem;color:#222;"
         "line-height:1.45}table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}"
         "td,th{border:1px solid #bbb;padding:.25rem .5rem}th{background:#eee}"
         "caption{caption-side:top;text-align:left;font-size:.85rem;color:#444;padding:.25rem 0}"
         "figure{margin:1.5rem 0}img{max-width:100%;height:auto;display:block}"
         "figcaption{font-size:.85rem;color:#444;margin-top:.4rem}"
         "dl.provenance{font-size:.8rem;color:#555;display:grid;grid-template-columns:max-content auto;gap:0 1rem}"
         "dl.provenance dd{margin:0;font-family:monospace}div.experiment{border-top:3px solid #999;margin-top:2.5rem}"
         "section.experiment-set{border-top:1px solid #ccc;margin-top:1.5rem}"
         "nav#contents{background:#f6f6f6;padding:.5rem 1.5rem;border:1px solid #ddd}"
         "nav#contents ol{list-style:none;padding-left:1.2rem}nav#contents li{margin:.15rem 0}"
         "nav#contents .description{color:#555;font-size:.9rem}h4{font-size:1.15rem}h5{font-size:1.05rem}"
         "h6{font-size:1rem}")
PROVENANCE_FIELDS = (("badminima_version", "badminima"), ("git_commit", "git commit"), ("torch_version", "torch"),
                     ("device", "device"), ("command", "command line"), ("date", "date (UTC)"))


def markdown_to_html(text: str) -> str:
    """Our reports' Markdown (headings, paragraphs, pipe tables with `\\|` escapes) as HTML; its `#` headings
    become <h4>, below the page's <h1>, each experiment's <h2> and each set's <h3> (deeper ones <h5>, <h6>)."""
    body = markdown.markdown(text, extensions=["tables"])
    return re.sub(r"<(/?)h([1-6])>", lambda m: f"<{m[1]}h{min(int(m[2]) + 3, 6)}>", body)


def provenance_html(prov: dict | None) -> str:
    if not prov:
        return '<p class="provenance">Provenance: not recorded (a record written before badminima kept it).</p>'
    rows = "".join(f"<dt>{name}</dt><dd>{html.escape(str(prov.get(key) if prov.get(key) is not None else '-'))}</dd>"
                   for key, name in PROVENANCE_FIELDS)
    return f'<dl class="provenance">{rows}</dl>'


def embed_png(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def png_title(path: Path) -> str:
    """The title report/figures.py wrote into the PNG's "Title" text chunk ("" if it has none)."""
    from PIL import Image

    with Image.open(path) as image:
        return image.text.get("Title", "")


def scale_caption(entry: dict) -> str:
    """What a set's numbers were computed on, for every figure and table caption: the experiment's scale
    (dataset, model, preset), the training-set size, width and depth where a run spec set them, and the seeds."""
    label, parts = entry["label"], [entry["scale"]]
    if "dataset" in label and entry["scale"].startswith(f"{label['dataset']} / {label['model']}"):
        parts.append(f"{label['train_size'] or 'all'} training examples, width {label['width'] or 'default'}, "
                     f"depth {label['depth'] or 'default'}")
    if label.get("seeds"):
        seeds = label["seeds"]
        parts.append(f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})")
    return "; ".join(parts)


class Numbering:
    """Running numbers of the page's figures and tables."""

    def __init__(self):
        self.figures = self.tables = 0

    def figure(self, path: Path, entry: dict) -> str:
        self.figures += 1
        lines = [line for line in png_title(path).splitlines() if line.strip() and line.strip() != entry["scale"]]
        title = html.escape("; ".join(lines) or readable(path.stem))
        return (f'<figure id="figure-{self.figures}">{embed_png(path, path.stem)}<figcaption><b>Figure '
                f"{self.figures}.</b> {title}. <i>Scale: {html.escape(scale_caption(entry))}.</i></figcaption>"
                "</figure>")

    def captioned_tables(self, body: str, entry: dict) -> str:
        """Every <table> of `body` with a caption: its number, the experiment and the scale. A table under a
        subsection about the paper holds published numbers: its caption says so instead of giving our scale;
        a table that mixes ours and the paper's says which entries are published."""
        heading, out, pos = "", [], 0
        for m in re.finditer(r"<h([4-6])>(.*?)</h\1>|<table>(.*?)</table>", body, re.S):
            if m[2] is not None:
                heading = m[2] if m[1] != "4" else ""  # the set's title heading names the paper it reproduces
                continue
            self.tables += 1
            label = f'<b>Table {self.tables}</b> ({html.escape(entry["name"])}).'
            if re.search(r"\bpaper\b", heading, re.I):
                text = f"{label} <i>Published values at the paper's scale (source above); not computed here.</i>"
            else:
                text = f"{label} <i>Scale: {html.escape(scale_caption(entry))}.</i>"
                if re.search(r"\bpaper\b", m[3], re.I):
                    text += " Entries marked paper: published values at the paper's scale."
            out += [body[pos:m.start()], f'<table id="table-{self.tables}"><caption>{text}</caption>{m[3]}</table>']
            pos = m.end()
        return "".join(out) + body[pos:]


def set_heading(entry: dict) -> str:
    """A set's title: what its run spec ran on, or, for an experiment with a scale of its own (synthetic
    problems), that scale and the seeds."""
    label = entry["label"]
    if "dataset" not in label or entry["scale"].startswith(f"{label['dataset']} / {label['model']}"):
        return set_title(label)
    seeds = label.get("seeds", [])
    return f"{entry['scale']}; {len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"


def run_scale(spec: dict) -> str:
    """What a stored run ran on, from its spec: dataset, training-set size, model, width, depth, seed."""
    data, model = spec["data"], spec["model"]
    return (f"{data['name']} ({data.get('train_size') or 'all'} training examples) / {model['name']}, width "
            f"{model.get('width') or 'default'}, depth {model.get('depth') or 'default'}, seed {spec.get('seed')}")


def measures_section(store: Store) -> str:
    """Every measure of the registry stored in the directory (`badminima measure`, and the experiments that
    use it), in full, by run, with the run's scale; empty if none. Only values stored under a measure's
    current key are shown: one stored under an older version of its convention (Measure.version) is
    superseded, and the section says how many were left out; experiments' own cached values are shown in
    their sets."""
    from ..measures.registry import MEASURES
    from ..measuring import in_percent, value_lines

    final_of = {}
    for run_id, spec, phases in store.conn.execute("SELECT id, spec, phases FROM runs ORDER BY rowid"):
        final_of.setdefault(json.loads(phases)[-1], (run_id, run_scale(json.loads(spec))))
    name_of = {m.key: name for name, m in MEASURES.items()}
    stored = store.conn.execute("SELECT phase_id, name, value FROM measures ORDER BY phase_id, name").fetchall()
    rows = [(pid, name_of[key], value) for pid, key, value in stored if key in name_of]
    superseded = sum(key not in name_of and measure_name_and_version(key)[0] in MEASURES for _, key, _ in stored)
    if not rows and not superseded:
        return ""
    cells = "".join(f"<tr><td>{html.escape(final_of.get(pid, ('-', '-'))[0])}</td><td>{html.escape(pid)}</td>"
                    f"<td>{html.escape(final_of.get(pid, ('-', '-'))[1])}</td><td>{html.escape(readable(name))}</td>"
                    f"<td><pre>{html.escape(chr(10).join(value_lines(in_percent(json.loads(value)), '')))}"
                    f"</pre></td></tr>" for pid, name, value in rows)
    return ('\n<section id="measures"><h2>Measures of stored runs</h2><p>Computed by <code>badminima measure</code> '
            'on each run\'s final model (accuracies in percent).'
            + (f" {superseded} value{'s' if superseded != 1 else ''} stored under an older convention of "
               "its measure (superseded; recompute with <code>badminima measure</code>) "
               f"{'are' if superseded != 1 else 'is'} not shown." if superseded else "")
            + '</p><table><caption><b>Measures</b>. <i>Scale: each '
            "row's run, as its spec says (dataset, training examples, model, width, depth, seed); the preset is "
            "that of the set the run belongs to.</i></caption><tr><th>run</th><th>phase</th><th>scale</th>"
            f"<th>measure</th><th>value</th></tr>{cells}</table></section>")


def set_section(entry: dict, paths: list[Path], number: str, numbering: Numbering) -> str:
    """One set: its heading, scale and provenance, its Markdown (tables captioned), its figures after the
    Markdown's headline part (before its first subsection), and where its records are."""
    name = html.escape(entry["name"])
    body = numbering.captioned_tables("\n".join(markdown_to_html(p.read_text()) for p in paths if p.suffix == ".md"),
                                      entry)
    figures = "\n".join(numbering.figure(p, entry) for p in paths if p.suffix == ".png")
    cut = body.find("<h5>")
    body = body + figures if cut < 0 else body[:cut] + figures + body[cut:]
    parts = [f'<section id="{name}-{html.escape(entry["set_id"])}" class="experiment-set" data-experiment="{name}">',
             f"<h3>{number} {html.escape(set_heading(entry))}</h3>",
             f"<p>Set {html.escape(entry['set_id'])}; {html.escape(scale_caption(entry))}. Accuracies in percent.</p>",
             provenance_html(entry.get("provenance")), body]
    parts += [f'<p>Records: {html.escape(str(p))}</p>' for p in paths if p.suffix == ".csv"]
    return "\n".join(parts) + "</section>"


def contents(groups: dict[str, list[dict]], descriptions: dict[str, str], measures: bool) -> str:
    """The table of contents: one entry per experiment, one sub-entry per set, then the measures."""
    items = []
    for i, (name, entries) in enumerate(groups.items(), 1):
        sets = "".join(f'<li><a href="#{html.escape(name)}-{html.escape(e["set_id"])}">{i}.{j} '
                       f"{html.escape(set_heading({**e, 'label': {**e['label'], 'changed': {}}}))}</a></li>"
                       for j, e in enumerate(entries, 1))
        items.append(f'<li><a href="#experiment-{html.escape(name)}">{i} {html.escape(name)}</a> '
                     f'<span class="description">{html.escape(descriptions[name])}</span><ol>{sets}</ol></li>')
    if measures:
        items.append('<li><a href="#measures">Measures of stored runs</a></li>')
    items.append('<li><a href="#built">How this page was built</a></li>')
    return f'<nav id="contents"><h2>Contents</h2><ol>{"".join(items)}</ol></nav>'


def build_report(out: str | Path, provenance: dict | None = None) -> Path:
    """Redraw every experiment set stored in `out` and write out/report/index.html; `provenance`: of this build."""
    from ..experiments import get_experiment, render_set

    store = Store(out)
    groups: dict[str, list[dict]] = {}
    for entry in store.experiments():
        groups.setdefault(entry["name"], []).append(entry)
    descriptions = {name: get_experiment(name).description for name in groups}
    numbering, blocks = Numbering(), []
    for i, (name, entries) in enumerate(groups.items(), 1):
        sets = [set_section(entry, render_set(get_experiment(name), store, entry["set_id"], entry["records"],
                                              entry["scale"]), f"{i}.{j}", numbering)
                for j, entry in enumerate(entries, 1)]
        blocks.append(f'<div class="experiment" id="experiment-{html.escape(name)}"><h2>{i} {html.escape(name)}</h2>'
                      f'<p class="description">{html.escape(descriptions[name])}</p>' + "\n".join(sets) + "</div>")
    body = "\n".join(blocks) or "<p>No experiment has been run in this directory yet.</p>"
    measures = measures_section(store)
    built = f"<p>This page was built by:</p>{provenance_html(provenance)}" if provenance else "<p>Not recorded.</p>"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>badminima report</title>"
            f"<style>{STYLE}</style></head><body><h1>badminima report</h1>"
            f"<p>Output directory: {html.escape(str(store.dir))}</p>{contents(groups, descriptions, bool(measures))}\n"
            f'{body}{measures}\n<section id="built"><h2>How this page was built</h2>{built}</section></body></html>\n')
    folder = store.dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "index.html"
    index.write_text(page)
    store.close()
    return index
