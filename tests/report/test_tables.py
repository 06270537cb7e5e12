"""Markdown tables survive `|` in their cells, in the .md (as GitHub-flavoured Markdown reads it) and in the HTML;
CSV records keep what the records hold. Checked with parsers of our own here (stdlib html.parser, csv)."""
import csv
import json
from html.parser import HTMLParser

from badminima.report.html import markdown_to_html
from badminima.report.tables import markdown_table, records_csv, set_title


class Cells(HTMLParser):
    """Rows of <th>/<td> texts of every <table>, and the tags seen."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.tags, self._cell = [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _gfm_cells(line: str) -> list[str]:
    """Split a pipe-table row as GitHub-flavoured Markdown does: `\\|` is a literal pipe."""
    cells, cell, i = [], "", 0
    body = line.strip()[1:-1]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            cell += body[i + 1] if body[i + 1] in "|\\" else body[i:i + 2]
            i += 2
            continue
        if body[i] == "|":
            cells.append(cell.strip())
            cell = ""
        else:
            cell += body[i]
        i += 1
    return cells + [cell.strip()]


HEADER = ["loss", "||w||", "||w_hat||", "a|b", "back\\slash"]
ROWS = [["logistic", 1.5, "||x||_2", None, "c:\\tmp"], ["exp", 2.0, "|", "x", "\\|"]]
SHOWN = [["logistic", "1.500", "||x||_2", "-", "c:\\tmp"], ["exp", "2.000", "|", "x", "\\|"]]


def test_markdown_table_escapes_pipes_for_a_gfm_reader():
    lines = markdown_table(HEADER, ROWS).splitlines()
    assert _gfm_cells(lines[0]) == HEADER
    assert [_gfm_cells(line) for line in lines[2:]] == SHOWN


def test_markdown_tables_become_html_tables_with_every_cell():
    text = "# implicit-bias\n\nGD: ||w(t)|| grows like log t; x_1 and y_2.\n\n" + markdown_table(HEADER, ROWS)
    page = Cells(markdown_to_html(text))
    assert page.tables == [[HEADER] + SHOWN]
    assert "h4" in page.tags and "h1" not in page.tags  # below the page's h1, each experiment's h2 and each set's h3
    assert "em" not in page.tags and "strong" not in page.tags  # the prose's underscores stay text


def test_records_csv_round_trip(tmp_path):
    records = [{"seed": 0, "test_acc": 87.5, "accuracy": [90.0, 45.5], "status": "done"},
               {"seed": 1, "test_acc": None, "extra": "a,b"}]
    with records_csv(tmp_path / "r.csv", records).open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["seed", "test_acc", "accuracy", "status", "extra"]
    assert rows[0]["test_acc"] == "87.5" and json.loads(rows[0]["accuracy"]) == [90.0, 45.5]
    assert rows[1]["test_acc"] == "" and rows[1]["extra"] == "a,b" and rows[1]["status"] == ""


def test_set_title_names_what_the_set_ran_on():
    label = {"dataset": "cifar10", "train_size": None, "model": "resnet18", "width": 16, "depth": None,
             "preset": "paper", "seeds": [0, 1, 2], "changed": {"recipe.epochs": 4}}
    title = set_title(label)
    for part in ("cifar10", "resnet18", "width 16", "depth default", "preset paper", "3 seeds (0, 1, 2)", "recipe.epochs=4"):
        assert part in title
