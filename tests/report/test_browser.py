"""The report page in a real browser (Debian's chromium, headless, driven by chromedriver): every set of
every experiment shows all the tables of its Markdown files, cell for cell, and all its figures; the table of
contents leads to every experiment and set; every figure and table is captioned with its set's scale; no
record key (`l2_path_norm`) is left in a header, heading or caption; figures are shown at the text's width."""
import re
import shutil
from pathlib import Path

import pytest

from badminima.cli import main
from badminima.experiments import list_experiments
from badminima.experiments.paper002 import implicit_bias
from badminima.report.html import PAGE_WIDTH_PX
from badminima.store import Store

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
TINY = ["--train-size", "300", "--width", "32", "--epochs", "4", "--pretrain-epochs", "3", "-R", "1", "--seeds", "0",
        "--workers", "1", "--quiet"]
PAPER_000 = ("bad-minima", "curves", "distances", "norms", "fgsm", "replication", "heuristics")
needs_browser = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                   reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")

READ_SECTIONS = """
return Array.from(document.querySelectorAll('section.experiment-set')).map(s => ({
  id: s.id,
  tables: Array.from(s.querySelectorAll('table')).map(t =>
    Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.textContent.trim()))),
  images: Array.from(s.querySelectorAll('img')).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight,
    i.getBoundingClientRect().width, i.getBoundingClientRect().height])}))"""

READ_PAGE = """
const text = e => e.textContent.replace(/\\s+/g, ' ').trim();
const style = getComputedStyle(document.body);
return {
  contentWidth: document.body.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight),
  toc: Array.from(document.querySelectorAll('nav#contents a')).map(a => [a.getAttribute('href'),
    document.getElementById(a.getAttribute('href').slice(1)) !== null]),
  experiments: Array.from(document.querySelectorAll('div.experiment')).map(d => d.id),
  sets: Array.from(document.querySelectorAll('section.experiment-set')).map(s => ({
    id: s.id,
    figures: Array.from(s.querySelectorAll('img')).map(i => [i.closest('figure') ? text(i.closest('figure')
      .querySelector('figcaption')) : null, i.getBoundingClientRect().width]),
    captions: Array.from(s.querySelectorAll('table')).map(t => t.caption ? text(t.caption) : null)})),
  labels: Array.from(document.querySelectorAll('th, caption, figcaption, h1, h2, h3, h4, h5, h6, nav')).map(text)}"""


def _gfm_row(line: str) -> list[str]:
    """A pipe-table row split as GitHub-flavoured Markdown does (`\\|` is a literal pipe), independent of our code."""
    cells, cell, body, i = [], "", line.strip()[1:-1], 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in "|\\":
            cell, i = cell + body[i + 1], i + 2
        elif body[i] == "|":
            cells, cell, i = cells + [cell.strip()], "", i + 1
        else:
            cell, i = cell + body[i], i + 1
    return cells + [cell.strip()]


def _markdown_tables(folder: Path) -> list[list[list[str]]]:
    """Every pipe table of the folder's .md files, in the order the page shows them, as rows of cells."""
    tables = []
    for md in sorted(folder.glob("*.md")):
        current = None
        for line in md.read_text().splitlines():
            if line.startswith("|"):
                if current is None:
                    current = []
                    tables.append(current)
                if not set(line) <= set("|-: "):
                    current.append(_gfm_row(line))
            else:
                current = None
    return tables


def _read_page(page: Path, profile: Path, script: str = READ_SECTIONS):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_window_size(1280, 900)
        driver.get(page.as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        sections = driver.execute_script(script)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
    return sections, errors


def _check_report(out: Path, tmp_path: Path, capsys) -> dict:
    """Build the report of `out`, read it in the browser and compare every set's section with its files."""
    assert main(["report", str(out)]) == 0
    page = out / "report" / "index.html"
    assert capsys.readouterr().out.strip().endswith(str(page))
    sections, errors = _read_page(page, tmp_path / "profile")
    assert errors == []
    store = Store(out)
    sets = {f"{e['name']}-{e['set_id']}": out / "report" / e["name"] / e["set_id"] for e in store.experiments()}
    store.close()
    assert [s["id"] for s in sections] == list(sets)  # one section per set, none lost
    for section in sections:
        folder = sets[section["id"]]
        expected = _markdown_tables(folder)
        assert section["tables"] == expected, section["id"]  # same tables, same cells, nothing split at a `|`
        assert all(len(row) == len(table[0]) for table in section["tables"] for row in table), section["id"]
        assert sorted(alt for alt, *_ in section["images"]) == sorted(p.stem for p in folder.glob("*.png"))
        for alt, complete, nw, nh, w, h in section["images"]:
            assert complete and nw > 0 and nh > 0 and w > 0 and h > 0, (section["id"], alt)
    _check_layout(out, page, tmp_path)
    return {s["id"]: s for s in sections}


def _check_layout(out: Path, page: Path, tmp_path: Path) -> None:
    """The table of contents, the captions, the names and the figures' width, read in the browser and
    compared with the store's sets."""
    store = Store(out)
    entries = {f"{e['name']}-{e['set_id']}": e for e in store.experiments()}
    store.close()
    layout, errors = _read_page(page, tmp_path / "profile-layout", READ_PAGE)
    assert errors == []
    assert layout["contentWidth"] == pytest.approx(PAGE_WIDTH_PX, abs=2)
    links = dict(layout["toc"])
    assert all(links.values()), [href for href, found in layout["toc"] if not found]  # every link lands
    names = list(dict.fromkeys(e["name"] for e in entries.values()))
    assert layout["experiments"] == [f"experiment-{n}" for n in names]
    assert {f"#experiment-{n}" for n in names} | {f"#{i}" for i in entries} <= set(links)
    keys = {k for e in entries.values() for r in e["records"] for k in r if "_" in k}
    for label in layout["labels"]:  # no record key left where a reader looks for names (spec paths such as
        assert not keys & set(re.findall(r"[A-Za-z0-9_.]+", label)), label  # init.replication_factor may stay)
    for section in layout["sets"]:
        entry = entries[section["id"]]
        seeds = len(entry["label"]["seeds"])
        for caption, width in section["figures"]:
            assert caption and f"Scale: {entry['scale']}" in caption and f"{seeds} seed" in caption, caption
            assert width >= 0.95 * layout["contentWidth"], (section["id"], caption, width)
        for caption in section["captions"]:
            assert caption and (f"Scale: {entry['scale']}" in caption and f"{seeds} seed" in caption
                                or "Published values at the paper's scale" in caption), caption


def _synthetic_sets(out: Path) -> None:
    """Three experiments' records as their runs would leave them (no training): norms in two sets (widths 32
    and 16), replication and distances, three seeds each."""
    from badminima.experiments.paper000.complexity import SETTINGS
    from badminima.experiments.paper000.published import PAPER_000_TABLE1_COLUMNS

    scale = "mnist1d / mlp, cpu preset (scaled down; not paper scale)"
    seeds = [0, 1, 2]
    store = Store(out)
    for width in (32, 16):
        label = {"dataset": "mnist1d", "train_size": 300, "model": "mlp", "width": width, "depth": None,
                 "preset": "cpu", "seeds": seeds, "changed": {}}
        norms = [{"run_id": f"r{width}{i}{r}{seed}", "init": i, "recipe": r, "seed": seed, "frobenius": 5.0 + seed,
                  "l1_path_norm": 250.0 + seed, "l2_path_norm": 0.7 + seed / 10, "spectral_product": 0.9,
                  "spectral_left_out": []} for seed in seeds for i, r in SETTINGS]
        store.record_experiment("norms", f"w{width}", label, scale, norms)
    label = {**label, "width": 32}
    replication = [{"run_id": f"r{f}{r}{seed}", "replication_factor": f, "recipe": r, "seed": seed,
                    "test_acc": 50.0 + f + seed, "train_acc": 100.0, "epochs": 4, "epoch_100": None}
                   for seed in seeds for f in (0, 1, 2) for r in ("vanilla", "sota")]
    store.record_experiment("replication", "r", label, scale, replication)
    distances = [{"seed": seed, **{c: 0.1 * (k + 1) for k, c in enumerate(PAPER_000_TABLE1_COLUMNS)}, "rho": 1.0}
                 for seed in seeds]
    store.record_experiment("distances", "d", label, scale, distances)
    store.close()


@needs_browser
def test_report_page_contents_captions_and_names(tmp_path, capsys):
    out = tmp_path / "out"
    _synthetic_sets(out)
    _check_report(out, tmp_path, capsys)


@needs_browser
def test_report_page_shows_every_table_and_figure_of_every_set(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(implicit_bias.SETTINGS, "cpu", implicit_bias.Settings(steps=20_000, ls_steps=300))
    out = tmp_path / "out"
    for name in PAPER_000:
        assert main(["run", name, *TINY, "--out", str(out)]) == 0
    assert main(["run", "distances", *TINY, "--width", "16", "--out", str(out)]) == 0  # a second set
    assert main(["run", "implicit-bias", "--out", str(out), "--quiet"]) == 0  # headers such as ||w_hat||
    capsys.readouterr()
    sections = _check_report(out, tmp_path, capsys)
    assert len(sections) == len(PAPER_000) + 2
    headers = [cell for s in sections.values() for table in s["tables"] for cell in table[0]]
    assert "||w_hat||" in headers and "rho = ||W0A||/||W0R||" in headers
    figures = {alt for s in sections.values() for alt, *_ in s["images"]}
    assert figures >= {"bad-minima-test-acc", "curves-train", "curves-test", "norms", "fgsm", "replication"}


@needs_browser
@pytest.mark.slow
def test_report_page_of_every_experiment(tmp_path, capsys):  # about 20 minutes on one CPU core
    out = tmp_path / "out"
    for name in list_experiments():
        flags = TINY if name in PAPER_000 else ["--train-size", "300", "--quiet"]
        assert main(["run", name, *flags, "--out", str(out)]) == 0, name
    capsys.readouterr()
    sections = _check_report(out, tmp_path, capsys)
    assert {s.rsplit("-", 1)[0] for s in sections} == set(list_experiments())
