"""The report page in a real browser (Debian's chromium, headless, driven by chromedriver): every set of
every experiment shows all the tables of its Markdown files, cell for cell, and all its figures."""
import shutil
from pathlib import Path

import pytest

from badminima.cli import main
from badminima.experiments import implicit_bias, list_experiments
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


def _read_page(page: Path, profile: Path):
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
        sections = driver.execute_script(READ_SECTIONS)
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
    return {s["id"]: s for s in sections}


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
